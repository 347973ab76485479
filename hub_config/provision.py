"""``ailys-provision-trainee``: the Unix account and Slurm association of a short course's trainee
on the Slurm site, made at their first server start by a hub that is not root, through one sudo rule
(docs/design-notes.md, "Accounts on the cluster for trainees").

    ailys-provision-trainee --site SITE add NAME COURSE   # at the trainee's first start (the spawner)
    ailys-provision-trainee --site SITE remove NAME       # once they are forgotten or retired
    ailys-provision-trainee --site SITE team NAME         # a project team's account, group, folder

It runs as root and trusts only what root owns: the site file (and every folder above it) must be
root's and writable by root alone, since its ``spawner.slurm.trainees`` says which commands run as
root. The catalogue's data (cohorts) belongs to the hub's account, so being a trainee there is
necessary but never enough: the account itself must be new, or already a trainee's (a uid in the
trainees' range). So whoever holds the hub account can at most make accounts in that range, in the
learners' group, with no login shell: identities the hub could act as through its Slurm rule anyway.
Never root, a system account, another learner's account, or a name a shell would read.

Each check is a small pure function (tests/unit/test_provision.py); ``main`` runs them, then the
site's commands, with a fixed environment and never through a shell.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import grp
import os
import pwd
import re
import shlex
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import click

from .catalogue import Catalogue, CatalogueError, UnknownCourse, load_catalogue
from .schema import TeamAccounts, TraineeAccounts, is_reserved

PROG = "ailys-provision-trainee"
# The Unix names the schema takes (Username), and course slugs (Slug): nothing a shell would read.
NAME = re.compile(r"[a-z_][a-z0-9_-]{0,31}")
SLUG = re.compile(r"[a-z][a-z0-9-]{1,38}[a-z0-9]")
# A team account (names.team_name): team-<course>-<team>, at most 32 characters.
TEAM_ACCOUNT = re.compile(r"team-[a-z0-9-]{1,27}")
COMMENT = "AILyS trainee"  # the accounts' GECOS: says who made them, to an administrator reading passwd
# The commands' whole environment (sudo has reset the caller's; SLURM_CONF comes from the site file).
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# One provisioning at a time on this host: two new trainees must not take the same free uid.
LOCK = Path("/run/ailys-provision-trainee.lock")
COMMAND_TIMEOUT = 120


class Refused(click.ClickException):
    """A request the command will not carry out, with the reason: the hub shows it to the learner."""

    exit_code = 3

    def show(self, file=None) -> None:
        click.echo(f"{PROG}: refused: {self.message}", err=True)


class Failed(click.ClickException):
    """A command of the site's failed: what it said."""

    exit_code = 4

    def show(self, file=None) -> None:
        click.echo(f"{PROG}: failed: {self.message}", err=True)


# --- pure checks ---------------------------------------------------------------------------------


def name_problem(name: str) -> str:
    """Why ``name`` can never be a trainee's account name ("" when it can)."""
    if not NAME.fullmatch(name):
        return f"{name!r} is not a Unix account name (lowercase letters, digits, _ and -, at most 32)"
    if is_reserved(name):
        return f"{name!r} is the name of a system or service account"
    return ""


def slug_problem(slug: str) -> str:
    return "" if SLUG.fullmatch(slug) else f"{slug!r} is not a course slug"


def trust_problem(path: Path, lstat: Callable[[str], os.stat_result] = os.lstat) -> str:
    """Why root must not act on what ``path`` says ("" when only root can have written it): the
    file and every folder above it are root's, not writable by group or others (a root-owned sticky
    folder such as /tmp excepted: nobody else can rename what is in it), and no symbolic link."""
    path = Path(os.path.abspath(path))
    for part in (path, *path.parents):
        try:
            st = lstat(str(part))
        except OSError as err:
            return f"{part}: {err.strerror}"
        if stat.S_ISLNK(st.st_mode):
            return f"{part} is a symbolic link"
        if st.st_uid != 0:
            return f"{part} belongs to uid {st.st_uid}, not root"
        sticky_folder = stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX and part != path
        if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH) and not sticky_folder:
            return f"{part} is writable by others than root (mode {stat.S_IMODE(st.st_mode):o})"
    return ""


def settings_problem(catalogue: Catalogue) -> str:
    """What is missing or inconsistent in the site's trainee settings, naming the key."""
    site = catalogue.site
    trainees = site.spawner.slurm.trainees
    key = f"{catalogue.site_file}: spawner.slurm.trainees"
    if trainees is None:
        return f"{key} is not set: this site does not provision trainees"
    if trainees.uid_min < site.spawner.min_uid:
        return f"{key}.uid_min ({trainees.uid_min}) is below spawner.min_uid ({site.spawner.min_uid})"
    if not trainees.home_root.is_dir():
        return f"{key}.home_root: {trainees.home_root} is not a folder"
    return ""


def trainee_problem(catalogue: Catalogue, name: str, slug: str, now: dt.datetime) -> str:
    """Why ``name`` is not a trainee of the short course ``slug`` who may log in now ("" if they are).
    A trainee follows short courses only: a learner of an academic course or a project team, an
    instructor or an admin has an account from the directory or the administrators."""
    try:
        course = catalogue.course(slug)
    except UnknownCourse as err:
        return str(err)
    if course.kind != "short-course":
        return f"course {slug} is {course.kind}, not a short course: its people have their own accounts"
    if name not in catalogue.learners(course):
        return f"{name} is not a trainee of {slug}"
    if name in catalogue.site.authentication.admin_users:
        return f"{name} is an admin of the site"
    for other in catalogue.courses:
        if name in other.instructors:
            return f"{name} teaches {other.slug}"
        if other.kind != "short-course" and name in catalogue.learners(other):
            return f"{name} is also a learner of {other.slug} ({other.kind}): their account comes from the directory"
    if catalogue.closed_for(name, now) is not None:
        return f"the access window of {name}'s courses is closed"
    return ""


def account_problem(account: pwd.struct_passwd | None, trainees: TraineeAccounts, gid: int) -> str:
    """Why an existing account of that name is not a trainee's ("" for none, or a trainee's own):
    a trainee's uid is in the trainees' range and their primary group is the learners' group."""
    if account is None:
        return ""
    name, uid = account.pw_name, account.pw_uid
    if not trainees.uid_min <= uid <= trainees.uid_max:
        return (
            f"{name} is already an account (uid {uid}) outside the trainees' range "
            f"{trainees.uid_min}-{trainees.uid_max}: not a trainee's, never taken over"
        )
    if account.pw_gid != gid:
        return f"{name} (uid {uid}) is not in the trainees' group {trainees.group} (gid {account.pw_gid})"
    return ""


def free_uid(trainees: TraineeAccounts | TeamAccounts, taken: Iterable[int], whose: str = "trainees'") -> int:
    """The first uid of the range that no account (nor group, for tools that make one) has."""
    used = set(taken)
    for uid in range(trainees.uid_min, trainees.uid_max + 1):
        if uid not in used:
            return uid
    raise Refused(f"no free uid left in the {whose} range {trainees.uid_min}-{trainees.uid_max}")


def slurm_account(trainees: TraineeAccounts, course_account: str | None, slug: str) -> str:
    """The Slurm account of the course's trainees: the course's own, if the site allows it."""
    if course_account is None:
        return trainees.slurm_accounts[0]
    if course_account not in trainees.slurm_accounts:
        allowed = ", ".join(trainees.slurm_accounts)
        raise Refused(
            f"course {slug} charges Slurm account {course_account}, which is not one of the site's "
            f"spawner.slurm.trainees.slurm_accounts ({allowed})"
        )
    return course_account


def commands(templates: list[list[str]], values: dict[str, str]) -> list[list[str]]:
    """The site's argv templates with the (checked) values in; the schema allows only their names."""
    return [[arg.format(**values) for arg in argv] for argv in templates]


def hub_command(trainees: TraineeAccounts, site_file: Path) -> list[str]:
    """What the spawner runs before a trainee's first start (SlurmSpawner.provision_command)."""
    return [*shlex.split(trainees.command.format(site=site_file)), "add", "{username}", "{course}"]


def ere_escape(text: str) -> str:
    """``text`` matched literally in a POSIX extended regular expression (sudoers' arguments)."""
    return re.sub(r"([.\[\]{}()*+?^$|\\#])", r"\\\1", text)


def sudoers_arguments(site_file: Path) -> str:
    """The arguments the sudoers rule allows: the site file fixed, the three forms, checked names."""
    names = NAME.pattern
    forms = f"add {names} {SLUG.pattern}|remove {names}|team {TEAM_ACCOUNT.pattern}"
    return f"^--site {ere_escape(str(site_file))} ({forms})$"


# --- doing it ------------------------------------------------------------------------------------


@dataclass
class Context:
    catalogue: Catalogue
    trainees: TraineeAccounts
    gid: int
    env: dict[str, str]


def trusted_catalogue(site: Path) -> Catalogue:
    """The site and its courses, read as root from a site file only root can have written."""
    if os.geteuid() != 0:
        raise Refused("must run as root (the hub runs it through its sudo rule)")
    if problem := trust_problem(site):
        raise Refused(f"the site file is not root's alone: {problem}")
    try:
        return load_catalogue(site)
    except CatalogueError as err:
        raise Refused(f"the site or its courses are invalid:\n{err}") from None


def command_env(catalogue: Catalogue) -> dict[str, str]:
    """The site's commands' whole environment: fixed, with SLURM_CONF from the site file."""
    env = {"PATH": PATH, "LANG": "C.UTF-8"}
    if conf := catalogue.site.spawner.slurm.slurm_conf:
        env["SLURM_CONF"] = str((catalogue.site_file.parent / conf).resolve())
    return env


def _load(site: Path) -> Context:
    catalogue = trusted_catalogue(site)
    if problem := settings_problem(catalogue):
        raise Refused(problem)
    trainees = catalogue.site.spawner.slurm.trainees
    try:
        gid = grp.getgrnam(trainees.group).gr_gid
    except KeyError:
        raise Refused(f"the trainees' group {trainees.group} does not exist on this host") from None
    return Context(catalogue, trainees, gid, command_env(catalogue))


def _account(name: str) -> pwd.struct_passwd | None:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        return None


def _run(ctx: Context, argv: list[str], ok: Callable[[subprocess.CompletedProcess], bool] | None = None):
    try:
        result = subprocess.run(
            argv, env=ctx.env, cwd="/", capture_output=True, text=True, timeout=COMMAND_TIMEOUT
        )
    except (OSError, subprocess.TimeoutExpired) as err:
        raise Failed(f"{shlex.join(argv)}: {err}") from None
    if not (ok or (lambda r: r.returncode == 0))(result):
        said = (result.stderr.strip() or result.stdout.strip() or "(no output)").replace("\n", " ")
        raise Failed(f"{shlex.join(argv)}: exit {result.returncode}: {said}")
    return result


def _associations(ctx: Context, name: str) -> list[str]:
    out = _run(
        ctx,
        ["sacctmgr", "--noheader", "--parsable2", "show", "association", f"user={name}", "format=account"],
    ).stdout
    return sorted({line.strip() for line in out.splitlines() if line.strip()})


@contextlib.contextmanager
def _one_at_a_time():
    with open(LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _values(ctx: Context, name: str, uid: int | str, course: str) -> dict[str, str]:
    return {
        "username": name,
        "uid": str(uid),
        "group": ctx.trainees.group,
        "home": str(ctx.trainees.home_root / name),
        "shell": ctx.trainees.shell,
        "comment": COMMENT,
        "course": course,
    }


def add(ctx: Context, name: str, slug: str, now: dt.datetime) -> list[str]:
    """Make what is missing of ``name``'s Unix account and Slurm association; the lines saying what
    was done. The account first: slurmctld gives an association its uid only if the name resolves
    when the association arrives (added before, the trainee's jobs are refused: "Invalid account").
    A new account whose association then fails is removed again, so the next start tries anew."""
    if problem := name_problem(name) or slug_problem(slug):
        raise Refused(problem)
    if problem := trainee_problem(ctx.catalogue, name, slug, now):
        raise Refused(problem)
    account = slurm_account(ctx.trainees, ctx.catalogue.course(slug).resources.account, slug)
    done = []
    with _one_at_a_time():
        existing = _account(name)
        if problem := account_problem(existing, ctx.trainees, ctx.gid):
            raise Refused(problem)
        made = existing
        if existing is None:
            taken = [a.pw_uid for a in pwd.getpwall()] + [g.gr_gid for g in grp.getgrall()]
            uid = free_uid(ctx.trainees, taken)
            for argv in commands(ctx.trainees.create, _values(ctx, name, uid, slug)):
                _run(ctx, argv)
            made = _account(name)
            if made is None or (problem := account_problem(made, ctx.trainees, ctx.gid)):
                raise Failed(
                    f"the site's create commands ran, but {problem or f'there is no account {name}'}"
                )
            done.append(
                f"created the Unix account {name} (uid {made.pw_uid}, group {ctx.trainees.group}, home {made.pw_dir})"
            )
        try:
            if account not in _associations(ctx, name):
                _run(ctx, ["sacctmgr", "-i", "add", "user", name, f"account={account}"])
                done.append(f"added the Slurm association of {name} to account {account}")
            _wait_for_controller(ctx, name, made.pw_uid)
        except Failed:
            if existing is None:  # all or nothing: no account without its association
                for argv in commands(ctx.trainees.remove, _values(ctx, name, made.pw_uid, slug)):
                    subprocess.run(argv, env=ctx.env, cwd="/", capture_output=True, timeout=COMMAND_TIMEOUT)
            raise
    return done or [f"{name} already has a Unix account and the Slurm association of {account}"]


def _wait_for_controller(ctx: Context, name: str, uid: int, timeout: float = 30.0) -> None:
    """Until slurmctld holds the association with the account's uid (slurmdbd sends it at once, but
    asynchronously): the trainee's first sbatch follows within a second."""
    argv = ["scontrol", "show", "assoc_mgr", f"users={name}", "flags=assoc"]
    deadline = time.monotonic() + timeout
    while f"UserName={name}({uid})" not in _run(ctx, argv).stdout:
        if time.monotonic() > deadline:
            raise Failed(f"slurmctld does not know the association of {name} (uid {uid}) after {timeout:g} s")
        time.sleep(0.2)


def remove(ctx: Context, name: str, now: dt.datetime, wait: float = 60.0) -> list[str]:
    """Cancel ``name``'s jobs, delete their Slurm associations, remove their Unix account and home,
    once they are no longer a trainee who may log in (forgotten, or their access window closed)."""
    if problem := name_problem(name):
        raise Refused(problem)
    existing = _account(name)
    if existing is None:
        raise Refused(f"there is no account {name} on this host")
    if problem := account_problem(existing, ctx.trainees, ctx.gid):
        raise Refused(problem)
    if ctx.catalogue.may_log_in(name, now):
        raise Refused(f"{name} may still log in (a course lists them and its window is open)")
    done = []
    with _one_at_a_time():
        jobs = _run(ctx, ["squeue", "--noheader", f"--user={name}", "--format=%i"]).stdout.split()
        if jobs:
            _run(ctx, ["scancel", f"--user={name}"])
            deadline = time.monotonic() + wait
            while _run(ctx, ["squeue", "--noheader", f"--user={name}", "--format=%i"]).stdout.split():
                if time.monotonic() > deadline:
                    raise Failed(f"{name}'s jobs {', '.join(jobs)} were cancelled but are still running")
                time.sleep(0.5)
            done.append(f"cancelled the Slurm jobs of {name}: {', '.join(jobs)}")
        if associations := _associations(ctx, name):
            _run(ctx, ["sacctmgr", "-i", "delete", "user", f"name={name}"])
            done.append(f"deleted the Slurm associations of {name} ({', '.join(associations)})")
        for argv in commands(ctx.trainees.remove, _values(ctx, name, existing.pw_uid, "")):
            _run(ctx, argv)
        if _account(name) is not None:
            raise Failed(f"the site's remove commands ran, but the account {name} is still there")
        done.append(f"removed the Unix account {name} (uid {existing.pw_uid}) and its home {existing.pw_dir}")
    return done


# --- the command -----------------------------------------------------------------------------------


@click.group(
    help="The Unix account and Slurm association of a short course's trainee on the Slurm site, made "
    "at their first start (add) and removed once they may no longer log in (remove); a project team's "
    "account, group and folder (team). Run as root, by the hub account through its sudo rule "
    "(docs/design-notes.md)."
)
@click.option(
    "--site",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The site file (root's, as the sudoers rule fixes it).",
)
@click.pass_context
def main(click_ctx: click.Context, site: Path) -> None:
    click_ctx.obj = site


@main.command("add")
@click.argument("name")
@click.argument("course")
@click.pass_obj
def add_command(site: Path, name: str, course: str) -> None:
    """Make the account of NAME, a trainee of the short course COURSE, if it is missing."""
    for line in add(_load(site), name, course, dt.datetime.now(dt.UTC)):
        click.echo(line)


@main.command("remove")
@click.argument("name")
@click.pass_obj
def remove_command(site: Path, name: str) -> None:
    """Remove the account of NAME, a trainee who may no longer log in, with their home."""
    for line in remove(_load(site), name, dt.datetime.now(dt.UTC)):
        click.echo(line)


@main.command("team")
@click.argument("name")
@click.pass_obj
def team_command(site: Path, name: str) -> None:
    """Make or refresh the team account NAME (team-<course>-<team>): its Unix group and members, its
    Slurm association and the team folder, as the course files say (hub_config/provision_team.py)."""
    from .provision_team import load_teams, team

    for line in team(load_teams(site), name):
        click.echo(line)


if __name__ == "__main__":
    sys.exit(main())
