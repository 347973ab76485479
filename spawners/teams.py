"""A project team on a Unix host: its group, its account, its folder, and its links in homes
(docs/teams.md). Done as root, by the hub's course sync and at each member's or mentor's spawn on
the local and container sites (the Slurm site provisions nodes through hub_config/provision.py).

- The team account ``team-<course>-<team>`` (names.team_name) owns the team's shared server; its
  primary group, of the same name, is the team's Unix group (useradd --user-group). Its password
  is locked: nobody logs in as it.
- Members and mentors are the group's supplementary members, exactly those of the course file:
  one removed from the file leaves the group. A process's groups are fixed when it starts, so one
  added while their server runs reaches the folder from their next server on.
- The folder ``<teams.dir>/<team account>``: owned by the account and its group, mode 2770 (setgid:
  what is made inside belongs to the team's group), with a default ACL giving that group rwx, so a
  file one member makes stays writable by the others whatever their umask.
- ``team-<team>/`` in each member's and mentor's home: a symlink to the folder (team_links.py,
  which the Slurm site's jobs run as the person). A container binds the folder at the same path,
  so the link resolves there too (spawners/docker/spawner.py).
- A team gone from the course files: its group emptied by the sync, its account and folder kept
  (``empty_gone_team``).

Standard library and traitlets only, and names a team by what ``hub_config.teams.TeamView`` gives: the hub's
configuration passes plain values.
"""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
from collections.abc import Iterable
from pathlib import Path

from traitlets import Any
from traitlets.config import Configurable

from .team_links import LINK_PREFIX, link_home

# The comment of every account the hub makes (homes.py too): an administrator reading passwd sees
# who made it, and we never take over an account someone else made.
ACCOUNT_COMMENT = "AILyS Hub user"
FOLDER_MODE = 0o2770


def _run(argv: list[str]) -> None:
    done = subprocess.run(argv, capture_output=True, text=True)
    if done.returncode:
        raise RuntimeError(f"{' '.join(argv)} failed: {done.stderr.strip() or done.returncode}")


def _account(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def ensure_account(name: str, home: Path, min_uid: int) -> pwd.struct_passwd:
    """The team account and its group (made if missing: a uid from min_uid up, locked password),
    refused if an account of that name exists that we did not make."""
    account = _account(name)
    if account is None:
        _run(
            [
                "useradd",
                "--key",
                f"UID_MIN={min_uid}",
                "--home-dir",
                str(home),
                "--no-create-home",
                *(["--gid", name] if _group(name) else ["--user-group"]),
                "--shell",
                "/bin/bash",  # the team server's terminals; the password is locked (useradd's default)
                "--comment",
                ACCOUNT_COMMENT,
                name,
            ]
        )
        account = pwd.getpwnam(name)
    # The team server's spawner makes it the same way if it starts first (homes.py)
    if account.pw_gecos != ACCOUNT_COMMENT or grp.getgrgid(account.pw_gid).gr_name != name:
        raise RuntimeError(
            f"Unix account {name} exists and is not a team account made by AILyS Hub "
            f"(comment {account.pw_gecos!r}, primary group {account.pw_gid}): an administrator must decide"
        )
    if account.pw_uid < min_uid:
        raise RuntimeError(
            f"team account {name} has uid {account.pw_uid}, below the site's min_uid {min_uid}"
        )
    return account


def _group(name: str) -> grp.struct_group | None:
    try:
        return grp.getgrnam(name)
    except KeyError:
        return None


def set_members(group: str, people: Iterable[str]) -> tuple[list[str], list[str]]:
    """Make the group's supplementary members exactly those of ``people`` that have an account
    (one without an account yet joins when it is made, at their first spawn). Returns (added,
    removed)."""
    wanted = sorted({p for p in people if _account(p) is not None})
    have = sorted(grp.getgrnam(group).gr_mem)
    if wanted != have:
        _run(["gpasswd", "--members", ",".join(wanted), group])
    return sorted(set(wanted) - set(have)), sorted(set(have) - set(wanted))


def ensure_folder(folder: Path, account: pwd.struct_passwd) -> None:
    """The team folder: owner and group the team's, mode 2770, default ACL group rwx."""
    folder.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    folder.mkdir(mode=0o700, exist_ok=True)  # closed until its mode is set below
    os.chown(folder, account.pw_uid, account.pw_gid)
    os.chmod(folder, FOLDER_MODE)
    # A file made inside inherits group rwx and a mask of rwx: a member's umask (022) cannot
    # leave it read-only to the others.
    _run(["setfacl", "--modify", "default:group::rwx,default:mask::rwx,default:other::---", str(folder)])


def ensure_team(
    name: str, folder: Path, people: Iterable[str], home: Path, min_uid: int
) -> tuple[list, list]:
    """Account, group members and folder of one team; (added, removed) members of its group."""
    account = ensure_account(name, home, min_uid)
    ensure_folder(folder, account)
    return set_members(name, people)


def leave_other_teams(person: str, teams: set[str]) -> list[str]:
    """Take ``person`` out of every team group of ours but ``teams`` (those of the course files):
    at their next spawn, a member removed from a team no longer has its group."""
    left = []
    for group in grp.getgrall():
        if group.gr_name in teams or person not in group.gr_mem or not group.gr_name.startswith(LINK_PREFIX):
            continue
        owner = _account(group.gr_name)
        if owner and owner.pw_gid == group.gr_gid and owner.pw_gecos == ACCOUNT_COMMENT:
            _run(["gpasswd", "--delete", person, group.gr_name])
            left.append(group.gr_name)
    return left


class TeamLinks(Configurable):
    """Who has which team folder (configured as TeamLinks): the local and container spawners
    through TeamHomes below; the Slurm spawner gives a person's job its links to make
    (spawners/team_links.py)."""

    team_folders = Any(
        None,
        allow_none=True,
        help="Callable(username) -> {'dir': the site's teams folder, 'links': {link name: {'name': "
        "team account and group, 'folder': team folder, 'people': members and mentors}}}; None: no "
        "teams. hub_config/team_folders.py gives one that reads the course files at each call.",
    ).tag(config=True)

    def team_links_of(self, username: str) -> tuple[str, dict[str, str]] | None:
        """(the teams folder, {link name: team folder}) of ``username``; None: no teams on this site."""
        if self.team_folders is None:
            return None
        teams = self.team_folders(username)
        return teams["dir"], {link: team["folder"] for link, team in teams["links"].items()}


class TeamHomes(TeamLinks):
    """Mixed into LearnerHome: at each spawn of a person, as root, their teams' groups and folders
    and their ``team-<team>`` links (``link_teams``)."""

    def link_teams(self, owner: pwd.struct_passwd, home: Path, home_root: Path, min_uid: int) -> None:
        if self.team_folders is None:
            return
        teams = self.team_folders(owner.pw_name)
        links = {}
        for link, team in teams["links"].items():
            ensure_team(team["name"], Path(team["folder"]), team["people"], home_root / team["name"], min_uid)
            links[link] = Path(team["folder"])
        link_home(home, links, Path(teams["dir"]), owner.pw_uid, owner.pw_gid)
        leave_other_teams(owner.pw_name, {t["name"] for t in teams["links"].values()})

    def team_mounts(self, owner: pwd.struct_passwd) -> dict[str, int]:
        """Team folder -> gid of the teams whose Unix group ``owner`` is in now (after
        ``link_teams``): what a container binds and adds to its groups."""
        if self.team_folders is None:
            return {}
        mounts = {}
        for team in self.team_folders(owner.pw_name)["links"].values():
            group = _group(team["name"])
            if group is not None and owner.pw_name in group.gr_mem:
                mounts[team["folder"]] = group.gr_gid
        return mounts


def empty_gone_team(name: str) -> bool:
    """A team removed from the course files: its group loses every member (its account and folder
    stay, so nothing is lost and only root reaches the folder). Only a team group of ours: its
    account made by the hub, the group its primary one. True if members were taken out."""
    group, owner = _group(name), _account(name)
    if group is None or owner is None or not name.startswith(LINK_PREFIX):
        return False
    if owner.pw_gid != group.gr_gid or owner.pw_gecos != ACCOUNT_COMMENT or not group.gr_mem:
        return False
    _run(["gpasswd", "--members", "", name])
    return True


def main() -> None:
    """``python -m spawners.teams`` (the course sync, as root): on stdin, JSON ``{"teams": [{name,
    folder, people, home, min_uid}], "gone": [team account]}``; each team made as the files say,
    each gone team's group emptied; what changed on stdout."""
    import json
    import sys

    given = json.load(sys.stdin)
    for team in given["teams"]:
        added, removed = ensure_team(
            team["name"], Path(team["folder"]), team["people"], Path(team["home"]), team["min_uid"]
        )
        if added:
            print(f"add {', '.join(added)} to Unix group {team['name']}")
        if removed:
            print(f"remove {', '.join(removed)} from Unix group {team['name']}")
    for name in given["gone"]:
        if empty_gone_team(name):
            print(
                f"emptied Unix group {name}: its team is gone from the course files (account and folder kept)"
            )


if __name__ == "__main__":
    main()
