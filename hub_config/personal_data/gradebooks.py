"""A person's grades in each course's nbgrader gradebook (grading/courses.py gradebook_url):
their student row (names, e-mail), each submitted assignment's scores, every graded cell and the
graders' comments. Read and removed with nbgrader's own Gradebook API.

Whether forget removes them is the course's rule (course.yaml ``grades.keep_after_forget``):
``keeps_grades``. A gradebook left in <data_dir>/grading/ by a course whose folder is gone has no
rule: forget leaves it and says so, for an administrator to decide.
"""

from __future__ import annotations

import contextlib
import csv
import dataclasses
import io
from pathlib import Path

from ..catalogue import Catalogue
from ..schema import Course
from .places import Places, check_person


def keeps_grades(course: Course) -> bool:
    """The course's rule, else its kind's: academic grades count towards a degree."""
    keep = course.grades.keep_after_forget
    return course.kind == "academic" if keep is None else keep


@dataclasses.dataclass(frozen=True)
class Book:
    slug: str
    url: str
    course: Course | None  # None: the course's folder is gone, its gradebook is still here


def gradebooks(catalogue: Catalogue, places: Places) -> list[Book]:
    """Every gradebook of the site: each course's (if it exists), and those of departed courses."""
    from grading.courses import gradebook_url  # grading depends on hub_config, not the reverse: late

    books = []
    for course in catalogue.courses:
        url = gradebook_url(catalogue, course)
        if not url.startswith("sqlite:///") or Path(url.removeprefix("sqlite:///")).is_file():
            books.append(Book(course.slug, url, course))
    known = {c.slug for c in catalogue.courses}
    for db in sorted(places.grading_root.glob("*/gradebook.db")):
        if db.parent.name not in known:
            books.append(Book(db.parent.name, f"sqlite:///{db}", None))
    return books


@contextlib.contextmanager
def _open(book: Book):
    from nbgrader.api import Gradebook

    from grading.autograde.course import alembic_on_path

    alembic_on_path()  # nbgrader runs alembic's command for a gradebook it has to bring up to date
    with Gradebook(book.url, book.slug) as gb:
        yield gb


def grades_of(book: Book, name: str) -> dict | None:
    """Everything ``book`` holds on ``name``; None if it does not know them."""
    from nbgrader.api import MissingEntry

    name = check_person(name)
    with _open(book) as gb:
        try:
            student = gb.find_student(name)
        except MissingEntry:
            return None
        submissions = []
        for sub in sorted(student.submissions, key=lambda s: s.assignment.name):
            notebooks = [
                {
                    "notebook": nb.name,
                    "score": nb.score,
                    "max_score": nb.max_score,
                    "flagged": nb.flagged,
                    "grades": [_without_ids(g.to_dict()) for g in nb.grades],
                    "comments": [_without_ids(c.to_dict()) for c in nb.comments],
                }
                for nb in sorted(sub.notebooks, key=lambda n: n.name)
            ]
            record = _without_ids(sub.to_dict())
            record["seconds_late"] = sub.total_seconds_late
            submissions.append({**record, "notebooks": notebooks})
        return {"course": book.slug, "student": _without_ids(student.to_dict()), "submissions": submissions}


def _without_ids(record: dict) -> dict:
    return {k: v for k, v in record.items() if k != "id"}  # the gradebook's internal UUIDs


def grades_csv(record: dict) -> str:
    """One row per submitted assignment, for a spreadsheet."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["course", "assignment", "submitted_at", "score", "max_score", "seconds_late"])
    for sub in record["submissions"]:
        writer.writerow(
            [
                record["course"],
                sub["name"],
                sub["timestamp"] or "",
                sub["score"],
                sub["max_score"],
                sub["seconds_late"],
            ]
        )
    return out.getvalue()


def remove_grades(book: Book, name: str) -> bool:
    """Remove ``name`` and their submissions' grades from ``book``; False if it did not know them."""
    from nbgrader.api import MissingEntry

    with _open(book) as gb:
        try:
            gb.remove_student(check_person(name))
        except MissingEntry:
            return False
    return True
