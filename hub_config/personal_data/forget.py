"""`ailys person forget NAME`: erase what the platform holds on a person (the GDPR right to
erasure), keep their grades only where a course's rules say so, and say what was done.

The order matters: first the records that make them a person of the site (cohort entries,
recorded groups, a demo password), so that the course sync does not give them a hub account
again and no login succeeds; then the hub account (its servers stopped), then their files.
"""

from __future__ import annotations

import dataclasses
import shutil
import subprocess

from ..catalogue import Catalogue
from . import gradebooks, hub_records, records
from .holdings import count_files, holdings


@dataclasses.dataclass
class Report:
    name: str
    removed: list[str] = dataclasses.field(default_factory=list)
    kept: list[str] = dataclasses.field(default_factory=list)  # by a course's rule
    left: list[str] = dataclasses.field(default_factory=list)  # for an administrator, or held elsewhere

    def lines(self) -> list[str]:
        out = [f"removed: {line}" for line in self.removed] or [f"nothing held on {self.name} was found"]
        out += [f"kept: {line}" for line in self.kept]
        out += [f"left: {line}" for line in self.left]
        return out


def forget(catalogue: Catalogue, name: str, hub=None) -> Report:
    """Remove what the platform holds on ``name``. ``hub``: the running hub's API
    (hub_records.running_hub), or None if the hub is stopped (its database is then changed)."""
    held = holdings(catalogue, name)
    where, report = held.places, Report(held.name)
    name = held.name
    for slug in records.remove_from_cohorts(where, name):
        report.removed.append(f"cohort record in {where.cohorts / (slug + '.json')}")
    for slug in records.remove_accommodations(where, name):
        report.removed.append(f"extra time and extensions in course {slug}")
    for source, groups in records.remove_from_rosters(where, name).items():
        report.removed.append(f"{source} group memberships recorded: {', '.join(groups)}")
    if records.remove_demo_login(where, name):
        report.removed.append(f"demo password in {where.demo_logins}")
    report.removed += hub_records.delete_hub_user(where, name, hub)
    if held.footprints or held.idle_stops:
        report.removed.append(_forget_footprints(where.database_url, name))
    if held.home:
        files = count_files(held.home)
        shutil.rmtree(held.home)
        report.removed.append(f"home {held.home} ({files} files)")
    if held.unix_account:
        done = subprocess.run(["userdel", name], capture_output=True, text=True)
        if done.returncode:
            report.left.append(f"Unix account {name}: userdel failed: {done.stderr.strip()}")
        else:
            report.removed.append(f"Unix account {name} (uid {held.unix_account.pw_uid})")
    for label, folder in held.exchange + held.nbgrader:
        files = count_files(folder)
        shutil.rmtree(folder)
        report.removed.append(f"{label}: {files} files ({folder})")
    for book, record in held.grades:
        subs = len(record["submissions"])
        if book.course is None:
            report.left.append(
                f"grades in {book.url} ({subs} submissions): course {book.slug} is no longer in the "
                "catalogue, so no rule says whether to keep them; decide, then remove them with nbgrader"
            )
        elif gradebooks.keeps_grades(book.course):
            rule = book.course.grades.keep_after_forget
            why = (
                "grades.keep_after_forget" if rule is not None else f"an {book.course.kind} course's default"
            )
            report.kept.append(f"grades in {book.slug}'s gradebook ({subs} submissions): {why}")
        elif gradebooks.remove_grades(book, name):
            report.removed.append(f"grades in {book.slug}'s gradebook ({subs} submissions)")
    for archive in held.archives:
        archive.unlink()
        report.removed.append(f"archive {archive}")
    if held.logins:  # last: a login racing with the above would have added a line
        held.logins.unlink(missing_ok=True)
        report.removed.append(f"log-in records {held.logins}")
    report.left += [
        f"still named in {w}: remove the name there (and from the repository's history), or the course "
        "sync gives them an empty hub account again"
        for w in held.named_in
    ]
    report.left += held.elsewhere
    return report


def _forget_footprints(database_url: str, name: str) -> str:
    """Energy records are anonymised, not deleted: course and site totals stay true."""
    from sqlalchemy import create_engine

    from footprint.records import forget_person

    engine = create_engine(database_url)
    try:
        records, stops = forget_person(engine, name)
    finally:
        engine.dispose()
    return (
        f"name from {records} energy records and {stops} idle-stop records in the hub database "
        "(anonymised: the course and site totals keep their figures)"
    )
