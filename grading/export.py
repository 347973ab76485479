"""`ailys grades export <course>`: the course's gradebook as a CSV for Moodle, and a JSON twin.

The CSV is what Moodle's grade import (Grades > Import > CSV file) reads: a header row, then one
row per learner, comma-separated, UTF-8. Moodle identifies the learner by the column mapped in
"Map from" (here `Username` or `Email address`) and takes each other column mapped to a grade
item; `Total` and `Notes` are for reading (map them to "Ignore", or Notes to a feedback item).
A grade cell is empty when the learner has no graded submission (Moodle then leaves that grade
as it is); numbers use a dot. The JSON says the same with every detail: each submission's time,
how late, whether its tests were changed, the maxima.

Late submissions: a submission later than the learner's deadline (the assignment's `due`, plus
their extra time and extension: accommodations.py) plus `grades.late.grace` of course.yaml is late; `grades.late.action` says what that does: accept (not marked), flag (marked
in Notes and the JSON), zero (marked, and exported as 0).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click

from hub_config.catalogue import UnknownCourse
from hub_config.site_option import catalogue_or_exit, site_option
from hub_config.units import format_duration

from . import accommodations
from .courses import course_dir, due_utc, gradebook_url


@dataclass
class Grade:
    score: float | None = None  # None: nothing graded
    max_score: float = 0.0
    submitted_at: str | None = None  # UTC, ISO 8601
    late: bool = False
    late_by_seconds: float = 0.0
    zeroed_late: bool = False
    needs_manual_grade: bool = False
    tampered: list[str] = field(default_factory=list)  # '<notebook>: <cell>: edited'
    flagged: bool = False  # by the tamper check or by hand in formgrader


@dataclass
class Row:
    username: str
    email: str
    grades: dict[str, Grade]

    @property
    def total(self) -> float:
        return sum(g.score or 0.0 for g in self.grades.values())


def number(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}".rstrip("0").rstrip(".")


def late_by(submitted: dt.datetime | None, due: dt.datetime | None) -> float:
    """Seconds after ``due`` (both naive UTC); 0 when on time or either is unknown."""
    if submitted is None or due is None:
        return 0.0
    return max(0.0, (submitted - due).total_seconds())


def apply_late_policy(grade: Grade, seconds_late: float, action: str, grace: float) -> Grade:
    if seconds_late <= grace or action == "accept":
        return grade
    grade.late, grade.late_by_seconds = True, seconds_late
    if action == "zero" and grade.score is not None:
        grade.score, grade.zeroed_late = 0.0, True
    return grade


def lateness(seconds: float) -> str:
    """How late, to the minute past the first one (units' text: 1d2h5m, 40s)."""
    return format_duration(int(seconds) if seconds < 60 else int(seconds) // 60 * 60)


def notes(row: Row) -> str:
    parts = []
    for name, g in row.grades.items():
        if g.late:
            parts.append(
                f"{name}: late by {lateness(g.late_by_seconds)}" + (", counted 0" if g.zeroed_late else "")
            )
        if g.tampered:
            parts.append(
                f"{name}: read-only or test cells changed ({'; '.join(g.tampered)}), original tests graded"
            )
        elif g.flagged:
            parts.append(f"{name}: flagged in formgrader")
        if g.needs_manual_grade:
            parts.append(f"{name}: not fully graded yet")
    return "; ".join(parts)


def gather(catalogue, course) -> list[Row]:
    """Every enrolled learner (and anyone else in the gradebook), every assignment of course.yaml."""
    from nbgrader.api import Gradebook, MissingEntry

    from .autograde.course import alembic_on_path
    from .integrity import tampering

    alembic_on_path()
    root = course_dir(catalogue, course.slug)
    db_url = gradebook_url(catalogue, course)
    policy = course.grades.late
    own = accommodations.records(root)  # each learner's deadline counts their extra time
    rows = []
    with Gradebook(db_url, course.slug) as gb:
        learners = list(dict.fromkeys([*catalogue.learners(course), *sorted(s.id for s in gb.students)]))
        for learner in learners:
            grades = {}
            for assignment in course.assignments:
                grade = Grade()
                try:
                    grade.max_score = gb.find_assignment(assignment.name).max_score
                    sub = gb.find_submission(assignment.name, learner)
                except MissingEntry:
                    grades[assignment.name] = grade
                    continue
                graded = any(
                    g.auto_score is not None or g.manual_score is not None
                    for nb in sub.notebooks
                    for g in nb.grades
                )
                grade.score = sub.score if graded else None
                grade.needs_manual_grade = sub.needs_manual_grade
                grade.submitted_at = sub.timestamp.isoformat() + "Z" if sub.timestamp else None
                grade.flagged = any(nb.flagged for nb in sub.notebooks)
                grade.tampered = tampering(db_url, course.slug, root, assignment.name, learner)
                due = accommodations.due_for(course, own.get(learner), assignment.name)
                seconds = late_by(sub.timestamp, due_utc(due))
                grades[assignment.name] = apply_late_policy(grade, seconds, policy.action, policy.grace)
            rows.append(Row(learner, course.grades.emails.get(learner, ""), grades))
    return rows


def to_csv(course, rows: list[Row]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    names = [a.name for a in course.assignments]
    writer.writerow(["Username", "Email address", *names, "Total", "Notes"])
    for row in rows:
        writer.writerow(
            [
                row.username,
                row.email,
                *(number(row.grades[n].score) for n in names),
                number(row.total),
                notes(row),
            ]
        )
    return out.getvalue()


def to_json(course, rows: list[Row], now: dt.datetime | None = None) -> str:
    now = now or dt.datetime.now(dt.UTC)
    maxima = {a.name: rows[0].grades[a.name].max_score if rows else 0.0 for a in course.assignments}
    data = {
        "course": course.slug,
        "exported_at": now.isoformat(),
        "late_policy": course.grades.late.model_dump(),
        "assignments": [
            {"name": a.name, "due": a.due.isoformat() if a.due else None, "max_score": maxima[a.name]}
            for a in course.assignments
        ],
        "max_total": sum(maxima.values()),
        "learners": [
            {
                "username": r.username,
                "email": r.email,
                "total": r.total,
                "grades": {n: asdict(g) for n, g in r.grades.items()},
            }
            for r in rows
        ],
    }
    return json.dumps(data, indent=1, ensure_ascii=False) + "\n"


@click.group()
def grades() -> None:
    """Grades of a course's gradebook."""


@grades.command()
@click.argument("course")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("."),
    show_default=True,
    help="Folder of <course>-grades.csv and <course>-grades.json.",
)
@site_option
def export(course: str, out_dir: Path, site: str) -> None:
    """Write COURSE's grades as a CSV for Moodle's grade import, and as JSON.

    One row per learner: username, email (course.yaml grades.emails), one column per assignment,
    the total, and notes (late submissions by the course's late policy, changed test cells).
    """
    catalogue = catalogue_or_exit(site)
    try:
        model = catalogue.course(course)
    except UnknownCourse as err:
        raise click.BadParameter(str(err), param_hint="COURSE") from None
    if not model.assignments:
        raise click.ClickException(
            f"course {course} has no assignments in its course.yaml: nothing to export"
        )
    db = gradebook_url(catalogue, model)
    if db.startswith("sqlite:///") and not Path(db.removeprefix("sqlite:///")).exists():
        raise click.ClickException(
            f"no gradebook at {db.removeprefix('sqlite:///')}: has the course's grading service started?"
        )
    rows = gather(catalogue, model)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / f"{course}-grades.csv", out_dir / f"{course}-grades.json"]
    for path, text in zip(paths, (to_csv(model, rows), to_json(model, rows)), strict=True):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.chmod(tmp, 0o600)  # grades and emails: the exporting account's only
        tmp.replace(path)
    late = sum(g.late for r in rows for g in r.grades.values())
    changed = sum(bool(g.tampered) for r in rows for g in r.grades.values())
    click.echo(
        f"{len(rows)} learners, {len(model.assignments)} assignments; {late} late, {changed} with changed "
        f"test cells\n  {paths[0]}\n  {paths[1]}"
    )
