"""Learners' Unix accounts and homes on the hub's host, shared by the spawners that run servers
there: local processes (local.py) and containers (docker/), which bind the same home.

As root, each learner gets an account of their own (created on first spawn, locked password, home
under ``home_root``, mode 0700, owned by them) and their courses' starter material in it.
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from traitlets import Unicode

from hub_config.names import course_of_group

from .accounts import SystemAccountGuard
from .teams import ACCOUNT_COMMENT, TeamHomes


def _run(argv: list[str]) -> None:
    """Run an account command; its own message (e.g. "user is currently used by process") on failure."""
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.returncode}")


def _group_exists(name: str) -> bool:
    try:
        grp.getgrnam(name)
    except KeyError:
        return False
    return True


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


class LearnerHome(TeamHomes, SystemAccountGuard):
    """Mixed into a spawner: the learner's account (``_account``) and home (``_prepare_home``)."""

    home_root = Unicode(
        help="Folder of the homes: <home_root>/<username>, mode 0700, owned by the user.",
    ).tag(config=True)

    courses_dir = Unicode(
        help="Folder of course folders. On each start, <course>/material/ of every course the "
        "user belongs to (groups course-<slug>, staff-<slug>) is copied to <home>/<slug>/, "
        "skipping files the user already has.",
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
                    # A team account's group (the team's) may exist before it: useradd then
                    # refuses --user-group, so the account joins it as its primary group.
                    *(["--gid", self.user.name] if _group_exists(self.user.name) else ["--user-group"]),
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

    def _prepare_home(self, groups: list[str]) -> pwd.struct_passwd | None:
        """The home (made if missing, mode 0700) with the starter material of the user's courses;
        as root, owned by their account, which is returned (None otherwise)."""
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
        if owner:  # team groups and folders, and the team-<team> links (teams.py)
            self.link_teams(owner, self.home, Path(self.home_root), self.min_uid)
        return owner
