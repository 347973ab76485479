"""Cohort files, <data_dir>/cohorts/<slug>.json, and importing trainees into them.

Every read-modify-write holds one lock (<data_dir>/cohorts/.lock): `ailys cohort` commands and
the hub's invitation page write the same files.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import os
import pwd
from collections.abc import Iterable, Iterator
from pathlib import Path

from .. import roster
from ..catalogue import Catalogue, UnknownCourse
from ..schema import Course
from .spreadsheet import Trainee
from .usernames import unique_username


class CohortError(ValueError):
    """A cohort command cannot be done; the message says why and what to do."""


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def stamp(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).isoformat(timespec="seconds")


def folder(data_dir: Path) -> Path:
    return Path(data_dir) / roster.COHORTS


def cohort_file(data_dir: Path, slug: str) -> Path:
    return folder(data_dir) / f"{slug}.json"


def read_cohort(data_dir: Path, slug: str) -> dict:
    data = roster.read_json(cohort_file(data_dir, slug), None) or {"course": slug, "trainees": []}
    if not isinstance(data.get("trainees"), list):
        raise CohortError(f"{cohort_file(data_dir, slug)}: no list 'trainees': not a file the hub writes")
    return data


def all_cohorts(data_dir: Path) -> dict[str, dict]:
    """Every course's cohort, by slug."""
    top = folder(data_dir)
    return {p.stem: read_cohort(data_dir, p.stem) for p in sorted(top.glob("*.json"))} if top.is_dir() else {}


def write_cohort(data_dir: Path, slug: str, data: dict) -> None:
    path = cohort_file(data_dir, slug)
    roster.write_json(path, data)  # mode 0600
    # Run as root, the file goes to the owner of the data folder: the hub's account must read it.
    owner = Path(data_dir).stat()
    if os.geteuid() == 0 and owner.st_uid != 0:
        os.chown(path, owner.st_uid, owner.st_gid)


@contextlib.contextmanager
def locked(data_dir: Path) -> Iterator[None]:
    top = folder(data_dir)
    top.mkdir(mode=0o700, parents=True, exist_ok=True)
    with open(top / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def short_course(catalogue: Catalogue, slug: str) -> Course:
    """The course that takes a cohort, or CohortError saying why this one cannot."""
    try:
        course = catalogue.course(slug)
    except UnknownCourse as err:
        raise CohortError(str(err)) from None
    if course.kind != "short-course":
        raise CohortError(
            f"course {slug} is of kind {course.kind}: only short courses (kind: short-course in "
            f"{catalogue.courses_dir / slug / 'course.yaml'}) take a cohort of trainees"
        )
    return course


@dataclasses.dataclass(frozen=True)
class Imported:
    added: list[dict]  # new trainees, as stored
    kept: list[dict]  # already in the cohort (matched by e-mail), unchanged


def host_accounts() -> set[str]:
    """Account names of this host: a new trainee never gets the name of someone else's account."""
    return {account.pw_name for account in pwd.getpwall()}


class NamesOutsideTheSite:
    """Names a new trainee may not take that live outside the site's files: a person of the
    directory (authentication.kind ldap: asked name by name, with the service account), or a name
    single sign-on has already given (<data_dir>/rosters/oidc-names.json). A trainee's local
    account would otherwise shadow that person's at login (hub_config/login/ldap.py) or be
    refused at theirs (hub_config/login/oidc.py)."""

    def __init__(self, catalogue: Catalogue, taken: set[str]):
        self.taken = taken
        auth = catalogue.site.authentication
        names_file = catalogue.data_dir / roster.ROSTERS / "oidc-names.json"
        if names_file.exists():
            self.taken |= set(roster.read_json(names_file, {}))
        self.directory = self.conn = None
        if auth.kind == "ldap" and auth.ldap is not None:
            from ..directory import Directory, DirectoryUnavailable

            self.directory = Directory.from_settings(auth.ldap)
            try:
                self.conn = self.directory.service()
            except DirectoryUnavailable as err:
                raise CohortError(
                    f"the directory is unavailable ({err}); a trainee's name must not be a directory "
                    "account's, so nothing was imported: try again when it answers"
                ) from None

    def __contains__(self, name: str) -> bool:
        if name in self.taken:
            return True
        return self.conn is not None and self.directory.find(self.conn, name) is not None


def import_trainees(
    catalogue: Catalogue,
    slug: str,
    trainees: Iterable[Trainee],
    now: dt.datetime | None = None,
    accounts: set[str] | None = None,
) -> Imported:
    """Add the trainees not yet in the course's cohort; those already there (same e-mail, whatever
    its case) keep their username and record. Someone already in another course's cohort keeps
    their username there too: one person, one account."""
    short_course(catalogue, slug)
    data_dir = catalogue.data_dir
    now = now or now_utc()
    with locked(data_dir):
        cohorts = all_cohorts(data_dir)
        cohort = cohorts.get(slug) or {"course": slug, "trainees": []}
        here = {t["email"].casefold(): t for t in cohort["trainees"]}
        elsewhere = {t["email"].casefold(): t["username"] for c in cohorts.values() for t in c["trainees"]}
        taken = set(catalogue.people()) | set(accounts if accounts is not None else host_accounts())
        taken |= {t["username"] for c in cohorts.values() for t in c["trainees"]}
        for course in catalogue.courses:
            taken |= set(course.instructors) | set(course.learners)
        taken = NamesOutsideTheSite(catalogue, taken)
        added, kept = [], []
        for trainee in trainees:
            key = trainee.email.casefold()
            if key in here:
                kept.append(here[key])
                continue
            username = elsewhere.get(key) or unique_username(trainee.first_name, trainee.last_name, taken)
            taken.taken.add(username)
            record = {
                "username": username,
                "email": trainee.email,
                "first_name": trainee.first_name,
                "last_name": trainee.last_name,
                "company": trainee.company,
                "imported": stamp(now),
                "invitation": None,
                "password_set": None,
            }
            here[key] = record
            added.append(record)
        if added:
            cohort["trainees"] = [*cohort["trainees"], *added]
            write_cohort(data_dir, slug, cohort)
    return Imported(added, kept)
