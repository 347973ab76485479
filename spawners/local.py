"""Learner servers as local processes: the embedded default for one machine.

As root, each server runs as the learner's own Unix account (created on first spawn,
locked password, home under ``home_root`` and readable by its owner only). Started by
anyone else, every server runs as that one account: fine for trying the platform on a
laptop, never for real learners.
"""

from __future__ import annotations

import asyncio
import os

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Float

from .homes import ACCOUNT_COMMENT, LearnerHome, copy_missing
from .leftovers import stop_leftovers
from .ready import serves
from .team_server import TeamServer

START_ATTEMPTS = 3  # a server whose port was taken before it bound it is started again, elsewhere

__all__ = ["ACCOUNT_COMMENT", "LocalSpawner", "copy_missing"]


class LocalSpawner(TeamServer, LearnerHome, LocalProcessSpawner):
    """A local process in the learner's home, with their courses' starter material (or a team
    account's shared server: team_server.py)."""

    ready_poll_interval = Float(
        0.05,
        help="Seconds between checks that a started server answers. start() returns only once "
        "it does, so the hub's own check (0.2 s backoff, doubling) succeeds at once.",
    ).tag(config=True)

    def make_preexec_fn(self, name):
        if self.as_root:
            return super().make_preexec_fn(name)
        home = str(self.home)
        return lambda: os.chdir(home)

    def user_env(self, env):
        if self.as_root:
            return super().user_env(env)
        env.update(USER=self.user.name, HOME=str(self.home), SHELL="/bin/bash")
        return env

    async def start(self):
        groups = [g.name for g in self.user.groups]  # read the ORM here, not in the thread
        await asyncio.to_thread(self._prepare_home, groups)
        await asyncio.to_thread(stop_leftovers, self.user.name, self.name, self.log)
        for attempt in range(1, START_ATTEMPTS + 1):
            ip, port = await super().start()
            if await self._wait_until_serving(ip, port):
                return ip, port
            # Its process ended before serving: most often the port was taken between the pick and
            # the server's bind (spawners/ready.py). Another port, up to START_ATTEMPTS times.
            self.log.warning(
                "The server of %s exited with code %s before serving on port %s (attempt %d of %d)",
                self.user.name,
                self.proc.returncode,
                port,
                attempt,
                START_ATTEMPTS,
            )
            self.port = 0
        raise RuntimeError(f"the server of {self.user.name} exited with code {self.proc.returncode}")

    async def _wait_until_serving(self, ip: str, port: int) -> bool:
        """True once this server answers under its own URL, False if its process ends first; past
        http_timeout, True: the hub's own check then reports the failure with its usual message."""
        deadline = asyncio.get_running_loop().time() + self.http_timeout
        while asyncio.get_running_loop().time() < deadline:
            if self.proc.poll() is not None:
                return False
            if await serves(ip, port, self.server.base_url):
                return True
            await asyncio.sleep(self.ready_poll_interval)
        return True
