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
from .ready import answers
from .team_server import TeamServer

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
        ip, port = await super().start()
        await self._wait_until_answering(ip, port)
        return ip, port

    async def _wait_until_answering(self, ip: str, port: int) -> None:
        """Return once the server accepts connections; raise if its process ends first."""
        deadline = asyncio.get_running_loop().time() + self.http_timeout
        while asyncio.get_running_loop().time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server of {self.user.name} exited with code {self.proc.returncode}")
            if await answers(ip, port):
                return
            await asyncio.sleep(self.ready_poll_interval)
        # Past http_timeout the hub's own check reports the failure with its usual message.
