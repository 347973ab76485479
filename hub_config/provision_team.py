"""``ailys-provision-trainee team NAME``: a project team on the Slurm site (docs/teams.md, "On the
Slurm site"): its team account and Unix group, the group's members, the account's Slurm
association, and the team folder under the site's ``teams.dir``, made or refreshed as the course
files say, by a hub that is not root, through the sudo rule of hub_config/provision.py.

The same trust as ``add``: the site file root's alone, NAME a team account of the course files
(names.team_name), an existing account taken as the team's only if its uid is in the team range
and its primary group is its own. Members are never a system account. The folder's parent, the
teams folder, must be root's alone too: root makes, chowns and chmods what is in it, so nobody
else may have put a link there. So whoever holds the hub account can at most make accounts in the
team range (no login shell, in the learners' group, which the hub could act as anyway), put
people with accounts into a team group, and make folders in the teams folder.

NAME a team account in the team range whose team left the course files: its group is emptied
(``gone_team``), nothing else; the course sync runs it for each gone team.

Each check is a small pure function (tests/unit/test_provision_team.py); ``team`` does the work.
"""

from __future__ import annotations

import grp
import os
import pwd
import shlex
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from . import names
from .catalogue import Catalogue
from .provision import (
    TEAM_ACCOUNT,
    Refused,
    _associations,
    _one_at_a_time,
    _run,
    _wait_for_controller,
    command_env,
    commands,
    free_uid,
    trust_problem,
    trusted_catalogue,
)
from .schema import TeamAccounts
from .teams import TeamView, team_of_account, teams_dir

COMMENT = "AILyS team"  # the team accounts' GECOS: who made them, for an administrator reading passwd
FOLDER_MODE = 0o2770  # the team's group only; setgid: what is made inside is the team's group's
# Group rwx and a mask of rwx on what is made inside: a member's umask 022 leaves it writable by all.
DEFAULT_ACL = "default:group::rwx,default:mask::rwx,default:other::---"
KEY = "spawner.slurm.teams"
UNCHANGED = "is as the course files say"  # the one line of a pass that changed nothing (the sync skips it)


# --- pure checks ---------------------------------------------------------------------------------


def team_name_problem(name: str) -> str:
    """Why ``name`` can never be a team account's name ("" when it can)."""
    if not TEAM_ACCOUNT.fullmatch(name) or len(name) > names.UNIX_NAME_MAX or name.endswith("-"):
        return f"{name!r} is not a team account name (team-<course>-<team>, at most 32 characters)"
    return ""


def teams_settings_problem(catalogue: Catalogue) -> str:
    """What is missing or inconsistent in the site's team account settings, naming the key."""
    site = catalogue.site
    settings = site.spawner.slurm.teams
    key = f"{catalogue.site_file}: {KEY}"
    if settings is None:
        return f"{key} is not set: this site does not provision teams"
    if settings.uid_min < site.spawner.min_uid:
        return f"{key}.uid_min ({settings.uid_min}) is below spawner.min_uid ({site.spawner.min_uid})"
    trainees = site.spawner.slurm.trainees
    if trainees and settings.uid_min <= trainees.uid_max and trainees.uid_min <= settings.uid_max:
        return (
            f"{key}: the range {settings.uid_min}-{settings.uid_max} overlaps the trainees' "
            f"{trainees.uid_min}-{trainees.uid_max}"
        )
    if not settings.home_root.is_dir():
        return f"{key}.home_root: {settings.home_root} is not a folder"
    return ""


def the_team(catalogue: Catalogue, name: str) -> TeamView:
    """The team whose account is ``name`` in the course files, or Refused."""
    team = team_of_account(catalogue, name)
    if team is None:
        raise Refused(f"no team of the course files has the account {name}")
    return team


def team_account_problem(
    account: pwd.struct_passwd | None, settings: TeamAccounts, group_of: Callable[[int], str | None]
) -> str:
    """Why an existing account of a team's name is not that team's ("" for none, or the team's
    own): a team account's uid is in the team range and its primary group bears its name."""
    if account is None:
        return ""
    name, uid = account.pw_name, account.pw_uid
    if not settings.uid_min <= uid <= settings.uid_max:
        return (
            f"{name} is already an account (uid {uid}) outside the team range "
            f"{settings.uid_min}-{settings.uid_max}: not a team's, never taken over"
        )
    if group_of(account.pw_gid) != name:
        return f"{name} (uid {uid}) has primary group {account.pw_gid}, not its own group {name}"
    return ""


def team_members(
    people: Iterable[str], lookup: Callable[[str], pwd.struct_passwd | None], min_uid: int
) -> tuple[list[str], list[str]]:
    """(those of ``people`` that have an account, sorted; those that have none yet). A person whose
    account is a system one (uid below the spawners' min_uid) is refused: never put in a team group."""
    present, missing = set(), set()
    for person in people:
        account = lookup(person)
        if account is None:
            missing.add(person)
        elif account.pw_uid < min_uid:
            raise Refused(f"{person} is a system account (uid {account.pw_uid}): never a team member")
        else:
            present.add(person)
    return sorted(present), sorted(missing)


def team_slurm_account(settings: TeamAccounts, course_account: str | None, slug: str) -> str:
    """The Slurm account of a team account: its course's, if the site allows it, else the site's first."""
    if course_account is None:
        return settings.slurm_accounts[0]
    if course_account not in settings.slurm_accounts:
        raise Refused(
            f"course {slug} charges Slurm account {course_account}, which is not one of the site's "
            f"{KEY}.slurm_accounts ({', '.join(settings.slurm_accounts)})"
        )
    return course_account


def folder_problem(folder: Path, lstat: Callable[[str], os.stat_result] = os.lstat) -> str:
    """Why ``folder`` cannot be the team folder ("" when it is a plain folder, or missing)."""
    try:
        st = lstat(str(folder))
    except FileNotFoundError:
        return ""
    if not stat.S_ISDIR(st.st_mode):
        return f"{folder} exists and is not a folder"
    return ""


def team_hub_command(settings: TeamAccounts, site_file: Path) -> list[str]:
    """What the hub runs for a team (the course sync; SlurmSpawner.team_provision_command)."""
    return [*shlex.split(settings.command.format(site=site_file)), "team", "{username}"]


# --- doing it ------------------------------------------------------------------------------------


@dataclass
class TeamContext:
    catalogue: Catalogue
    settings: TeamAccounts
    env: dict[str, str]  # the site commands' environment (provision._run reads it)


def load_teams(site: Path) -> TeamContext:
    catalogue = trusted_catalogue(site)
    if problem := teams_settings_problem(catalogue):
        raise Refused(problem)
    settings = catalogue.site.spawner.slurm.teams
    try:
        grp.getgrnam(settings.learners)
    except KeyError:
        raise Refused(f"the learners' group {settings.learners} ({KEY}.learners) does not exist") from None
    return TeamContext(catalogue, settings, command_env(catalogue))


def _account(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _group_name(gid: int) -> str | None:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return None


def _values(ctx: TeamContext, slug: str | None, name: str, uid: int, members: list[str]) -> dict[str, str]:
    return {
        "username": name,
        "uid": str(uid),
        "learners": ctx.settings.learners,
        "home": str(ctx.settings.home_root / name),
        "shell": ctx.settings.shell,
        "comment": COMMENT,
        "course": slug or "",
        "members": ",".join(members),
    }


def _account_of(ctx: TeamContext, team: TeamView, done: list[str]) -> pwd.struct_passwd:
    existing = _account(team.name)
    if problem := team_account_problem(existing, ctx.settings, _group_name):
        raise Refused(problem)
    if existing is not None:
        return existing
    try:
        grp.getgrnam(team.name)
        raise Refused(f"a group {team.name} exists without its team account: an administrator must decide")
    except KeyError:
        pass
    taken = [a.pw_uid for a in pwd.getpwall()] + [g.gr_gid for g in grp.getgrall()]
    uid = free_uid(ctx.settings, taken, "team")
    for argv in commands(ctx.settings.create, _values(ctx, team.slug, team.name, uid, [])):
        _run(ctx, argv)
    made = _account(team.name)
    if made is None or (problem := team_account_problem(made, ctx.settings, _group_name)):
        raise Refused(f"the site's create commands ran, but {problem or f'there is no account {team.name}'}")
    done.append(f"created the team account {team.name} (uid {made.pw_uid}, home {made.pw_dir})")
    return made


def _folder(ctx: TeamContext, folder: Path, account: pwd.struct_passwd, done: list[str]) -> None:
    """The team folder: owner and group the team's, mode 2770, the default ACL. Its parent is root's
    alone (checked first), so what is there was put by root: no link to follow."""
    parent = teams_dir(ctx.catalogue)
    if folder.parent != parent:
        raise Refused(f"{folder} is not in the teams folder {parent}")
    if not os.path.lexists(parent) and not trust_problem(parent.parent):
        os.mkdir(parent, 0o755)  # members walk through it to their team's folder
        done.append(f"made the teams folder {parent}")
    if problem := trust_problem(parent):
        raise Refused(f"the teams folder (teams.dir) is not root's alone: {problem}")
    if problem := folder_problem(folder):
        raise Refused(problem)
    try:
        st = os.lstat(folder)
    except FileNotFoundError:
        os.mkdir(folder, 0o700)  # closed until its owner and mode are set
        done.append(f"made the team folder {folder}")
        st = os.lstat(folder)
    if (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) != (account.pw_uid, account.pw_gid, FOLDER_MODE):
        os.chown(folder, account.pw_uid, account.pw_gid, follow_symlinks=False)
        os.chmod(folder, FOLDER_MODE, follow_symlinks=False)
    _run(ctx, ["setfacl", "--modify", DEFAULT_ACL, str(folder)])


def gone_team(ctx: TeamContext, name: str) -> list[str]:
    """Team account ``name`` of a team no longer in the course files: its group emptied, so the
    folder is nobody's but root's and the account's (a kept group would go on granting it to the
    former members). The account, its association and its folder stay: nothing is lost, and the
    team put back in the files gets them again. Refused if ``name`` is no team account of ours."""
    account = _account(name)
    if account is None:
        raise Refused(f"no team of the course files has the account {name}")
    if problem := team_account_problem(account, ctx.settings, _group_name):
        raise Refused(problem)
    folder = teams_dir(ctx.catalogue) / name
    with _one_at_a_time():
        if not grp.getgrnam(name).gr_mem:
            return [f"team {name} (gone from the course files, its group empty) {UNCHANGED}"]
        for argv in commands(ctx.settings.members, _values(ctx, None, name, account.pw_uid, [])):
            _run(ctx, argv)
    return [
        f"emptied Unix group {name}: its team is gone from the course files (account and folder {folder} kept)"
    ]


def team(ctx: TeamContext, name: str) -> list[str]:
    """Make what is missing of team ``name`` on the cluster and set its group's members to the
    files'; the lines saying what was done. The account first: slurmctld gives an association its
    uid only if the name resolves when the association arrives (provision.add). A team account of
    a team gone from the files: ``gone_team``."""
    if problem := team_name_problem(name):
        raise Refused(problem)
    if team_of_account(ctx.catalogue, name) is None:
        return gone_team(ctx, name)
    view = the_team(ctx.catalogue, name)
    slurm = team_slurm_account(ctx.settings, view.course.resources.account, view.slug)
    members, missing = team_members(view.people, _account, ctx.catalogue.site.spawner.min_uid)
    done: list[str] = []
    with _one_at_a_time():
        account = _account_of(ctx, view, done)
        if sorted(grp.getgrnam(name).gr_mem) != members:
            for argv in commands(
                ctx.settings.members, _values(ctx, view.slug, name, account.pw_uid, members)
            ):
                _run(ctx, argv)
            done.append(f"set the members of Unix group {name}: {', '.join(members) or '(none)'}")
        if slurm not in _associations(ctx, name):
            _run(ctx, ["sacctmgr", "-i", "add", "user", name, f"account={slurm}"])
            done.append(f"added the Slurm association of {name} to account {slurm}")
        _wait_for_controller(ctx, name, account.pw_uid)
        _folder(ctx, view.folder, account, done)
    done = done or [f"team {name} {UNCHANGED}"]
    if missing:
        done.append(f"not in group {name} yet, no account: {', '.join(missing)}")
    return done
