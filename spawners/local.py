"""Learner servers as local processes: the embedded default for one machine.

As root, each server runs as the learner's own Unix account (created on first spawn,
locked password, home under ``home_root`` and readable by its owner only). Started by
anyone else, every server runs as that one account: fine for trying the platform on a
laptop, never for real learners.
"""

from __future__ import annotations

import asyncio
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from jupyterhub.spawner import LocalProcessSpawner
from traitlets import Float, Unicode

from hub_config.names import course_of_group

from .accounts import SystemAccountGuard
from .ready import answers

ACCOUNT_COMMENT = "AILyS Hub user"


def _run(argv: list[str]) -> None:
    """Run an account command; its own message (e.g. "user is currently used by process") on failure."""
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.returncode}")


def copy_missing(src: Path, dst: Path, uid: int | None = None, gid: int | None = None) -> list[Path]:
    """Copy files of ``src`` that are not yet in ``dst``; never overwrite. Returns what was copied."""
    copied = []
    for path in sorted(src.rglob("*")):
        target = dst / path.relative_to(src)
        if path.is_symlink() or target.exists():
            continue  # links could point anywhere; an existing file is the learner's
        if path.is_dir():
            target.mkdir(parents=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
        copied.append(target)
        if uid is not None:
            os.chown(target, uid, gid)
    if uid is not None:
        os.chown(dst, uid, gid)
    return copied


class LocalSpawner(SystemAccountGuard, LocalProcessSpawner):
    """A local process in the learner's home, with their courses' starter material."""

    home_root = Unicode(
        help="Folder of the homes: <home_root>/<username>, mode 0700, owned by the user.",
    ).tag(config=True)

    courses_dir = Unicode(
        help="Folder of course folders. On each start, <course>/material/ of every course the "
        "user belongs to (groups course-<slug>, staff-<slug>) is copied to <home>/<slug>/, "
        "skipping files the user already has.",
    ).tag(config=True)

    ready_poll_interval = Float(
        0.05,
        help="Seconds between checks that a started server answers. start() returns only once "
        "it does, so the hub's own check (0.2 s backoff, doubling) succeeds at once.",
    ).tag(config=True)

    @property
    def as_root(self) -> bool:
        return os.geteuid() == 0

    @property
    def home(self) -> Path:
        return Path(self.home_root) / self.user.name

    def _account(self) -> pwd.struct_passwd:
        """The user's Unix account, created on first spawn with a locked password and a uid from
        min_uid up; refused if it is a system account."""
        try:
            account = pwd.getpwnam(self.user.name)
        except KeyError:
            self.log.info("Creating Unix account %s with home %s", self.user.name, self.home)
            # UID_MIN overrides login.defs', which may be lower than the site's min_uid.
            _run(
                [
                    "useradd",
                    "--key",
                    f"UID_MIN={self.min_uid}",
                    "--home-dir",
                    str(self.home),
                    "--no-create-home",
                    "--user-group",
                    "--shell",
                    "/bin/bash",
                    "--comment",
                    ACCOUNT_COMMENT,
                    self.user.name,
                ]
            )
            account = pwd.getpwnam(self.user.name)
        # First: a system account is refused whatever its home, before usermod could touch it.
        self.refuse_system_account(account)
        if Path(account.pw_dir) != self.home:
            if account.pw_gecos != ACCOUNT_COMMENT:
                raise RuntimeError(
                    f"Unix account {self.user.name} exists with home {account.pw_dir}, not {self.home}, "
                    "and was not made by AILyS Hub: an administrator must decide which is right"
                )
            # Our own account, and the site's data folder moved: follow it.
            _run(["usermod", "--home", str(self.home), self.user.name])
            account = pwd.getpwnam(self.user.name)
        return account

    def _prepare_home(self, groups: list[str]) -> None:
        owner = self._account() if self.as_root else None
        uid, gid = (owner.pw_uid, owner.pw_gid) if owner else (None, None)
        self.home.mkdir(parents=True, exist_ok=True)
        self.home.chmod(0o700)
        if owner:
            os.chown(self.home, uid, gid)
        for slug in filter(None, map(course_of_group, groups)):
            material = Path(self.courses_dir) / slug / "material"
            if material.is_dir():
                (self.home / slug).mkdir(exist_ok=True)
                copied = copy_missing(material, self.home / slug, uid, gid)
                if copied:
                    self.log.info("Copied %d starter files of %s for %s", len(copied), slug, self.user.name)

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
