"""Everything the platform holds on one person, found in one pass: what export packs, what forget
removes, and what both say is not held here."""

from __future__ import annotations

import dataclasses
import os
import pwd
from pathlib import Path

from ..catalogue import Catalogue
from . import gradebooks, hub_records, records
from .places import Places, check_person, places


@dataclasses.dataclass
class Holdings:
    name: str
    places: Places
    home: Path | None  # an existing home on this host
    exchange: list[tuple[str, Path]]  # (where in an export, folder) of submissions and feedback
    nbgrader: list[tuple[str, Path]]  # grading's copies of their submissions
    grades: list[tuple[gradebooks.Book, dict]]
    hub: dict | None
    cohorts: dict[str, dict]
    rosters: dict[str, list[str]]
    logins: Path | None
    archives: list[Path]
    demo_login: bool
    unix_account: pwd.struct_passwd | None  # made by the local spawner for their servers
    named_in: list[str]  # site and course files (git) that name them
    elsewhere: list[str]  # held by others than this platform, or not by it at all
    # Energy records of their sessions and graded submissions, and of their idle sessions the
    # culler stopped (footprint/records.py, in the hub database).
    footprints: list = dataclasses.field(default_factory=list)
    idle_stops: list = dataclasses.field(default_factory=list)
    # Extra time and extensions, by course (grading/accommodations.py): health-related.
    accommodations: dict[str, dict] = dataclasses.field(default_factory=dict)

    def __bool__(self) -> bool:
        held = (self.home, self.exchange, self.nbgrader, self.grades, self.hub, self.cohorts, self.rosters)
        also = (self.accommodations, self.logins, self.archives, self.demo_login, self.unix_account)
        return any(held) or any(also) or any((self.footprints, self.idle_stops))

    def lines(self) -> list[str]:
        """What is held, one line each, as forget's confirmation and the export's README list it."""
        out = []
        if self.home:
            out.append(f"home {self.home} ({count_files(self.home)} files)")
        for where, folder in self.exchange + self.nbgrader:
            out.append(f"{where.replace('/', ' ', 1)}: {count_files(folder)} files in {folder}")
        for book, record in self.grades:
            out.append(f"grades in {book.slug}'s gradebook: {len(record['submissions'])} submissions")
        if self.hub:
            out.append(f"hub records of {self.name}: {', '.join(k for k in self.hub if k != 'name')}")
        for slug, held in self.cohorts.items():
            out.append(f"cohort record in {self.places.cohorts / (slug + '.json')} ({', '.join(held)})")
        for source, groups in self.rosters.items():
            out.append(f"{source} groups recorded: {', '.join(groups)}")
        for slug in self.accommodations:
            out.append(f"extra time or extensions in course {slug}")
        if self.logins:
            out.append(f"log-in records {self.logins}")
        out += [f"archive {a}" for a in self.archives]
        if self.demo_login:
            out.append(f"demo password in {self.places.demo_logins}")
        if self.unix_account:
            out.append(f"Unix account {self.name} (uid {self.unix_account.pw_uid}) made for their servers")
        if self.footprints or self.idle_stops:
            out.append(
                f"energy records in the hub database: {len(self.footprints)} sessions and graded "
                f"submissions, {len(self.idle_stops)} idle sessions stopped"
            )
        return out


def count_files(folder: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(folder))


def _our_account(name: str, home: Path | None) -> pwd.struct_passwd | None:
    """The Unix account the local spawner made (its comment, its home under home_root)."""
    from spawners.local import ACCOUNT_COMMENT

    try:
        account = pwd.getpwnam(name)
    except KeyError:
        return None
    made = account.pw_gecos == ACCOUNT_COMMENT and home is not None and Path(account.pw_dir) == home
    return account if made else None


def _elsewhere(catalogue: Catalogue, name: str, rosters: dict[str, list[str]]) -> list[str]:
    out = []
    if catalogue.site.spawner.kind != "local":
        out.append(
            f"home: learners' servers run on the cluster ({catalogue.site.spawner.kind}), where the home "
            f"of {name} is the cluster's: ask its administrators (Mesolys) for it"
        )
    if "ldap" in rosters or catalogue.site.authentication.kind == "ldap":
        out.append("directory account and group memberships: kept by the directory (Mesolys LDAP), not here")
    if "oidc" in rosters or catalogue.site.authentication.kind == "oidc":
        out.append("single sign-on account: kept by the identity provider of the institution, not here")
    out.append(
        "the hub's log files (<data_dir>/logs) name people in lines about logins and servers; "
        "they are rotated by the site, not per person"
    )
    return out


def _footprint_records(where: Places, name: str) -> tuple[list, list]:
    from sqlalchemy import create_engine

    from footprint.records import of_person

    engine = create_engine(where.database_url)
    try:
        return of_person(engine, name)
    finally:
        engine.dispose()


def holdings(catalogue: Catalogue, name: str) -> Holdings:
    name = check_person(name)
    where = places(catalogue)
    home = where.home(name)
    grades = []
    for book in gradebooks.gradebooks(catalogue, where):
        record = gradebooks.grades_of(book, name)
        if record is not None:
            grades.append((book, record))
    rosters = records.roster_groups(where, name)
    logins = where.logins_file(name)
    demo = where.demo_logins.is_file() and any(
        line.split(maxsplit=1)[:1] == [name] for line in where.demo_logins.read_text().splitlines()
    )
    footprints, idle_stops = _footprint_records(where, name)
    return Holdings(
        footprints=footprints,
        idle_stops=idle_stops,
        name=name,
        places=where,
        home=home if home and home.is_dir() else None,
        exchange=where.exchange_folders(name),
        nbgrader=where.nbgrader_folders(name),
        grades=grades,
        hub=hub_records.hub_record(where, name),
        cohorts=records.cohort_records(where, name),
        accommodations=records.accommodation_records(where, name),
        rosters=rosters,
        logins=logins if logins.is_file() else None,
        archives=where.archives_of(name),
        demo_login=demo,
        unix_account=_our_account(name, where.home(name)),
        named_in=records.named_in(catalogue, name),
        elsewhere=_elsewhere(catalogue, name, rosters),
    )
