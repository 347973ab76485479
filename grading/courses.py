"""Each course's nbgrader course folder, made from course.yaml and courses/<slug>/source/ alone.

    <data_dir>/grading/<slug>/          0700, the hub's account: no learner can read it
        source/<assignment>/            copied from courses/<slug>/source/ (newer files win)
        nbgrader_config.py              written here at every start: course id, gradebook, exchange
        gradebook.db                    SQLite, unless a PostgreSQL URL is configured
        release/ submitted/ autograded/ feedback/      nbgrader's own folders

The per-course grading service (service.py) calls ``prepare_course`` when it starts, and
`ailys grade`/`ailys grades export` read the same folder (``course_dir``).
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
from pathlib import Path

from hub_config.schema import Course

GRADING_DIR = "grading"
# Sanitize passes of nbgrader's autograde, with our tamper check first (it must see the
# learner's cells before OverwriteCells puts the originals back).
SANITIZE = [
    "grading.integrity.FlagTampering",
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# nbgrader's feedback passes, and ours that removes hidden tests and what quotes them.
FEEDBACK = [
    "nbgrader.preprocessors.GetGrades",
    "nbconvert.preprocessors.CSSHTMLHeaderPreprocessor",
    "grading.feedback.HideHiddenTests",
]


def grading_root(catalogue) -> Path:
    return catalogue.data_dir / GRADING_DIR


def course_dir(catalogue, slug: str) -> Path:
    return grading_root(catalogue) / slug


def gradebook_url(catalogue, course: Course) -> str:
    """The course's own URL, else the site's PostgreSQL template, else SQLite in its folder."""
    if course.grades.database_url:
        return course.grades.database_url
    shared = catalogue.site.formgraders.database_url
    if shared:  # one database per course: nbgrader's assignment names are unique in a gradebook
        return shared.replace("{course}", course.slug.replace("-", "_"))
    return f"sqlite:///{course_dir(catalogue, course.slug) / 'gradebook.db'}"


def graded_courses(catalogue) -> list[Course]:
    """Courses that have assignments, in the order that gives their services' ports."""
    return sorted((c for c in catalogue.courses if c.assignments), key=lambda c: c.slug)


def nbgrader_config(catalogue, course: Course) -> str:
    """The course folder's nbgrader_config.py: what formgrader, nbgrader's commands and
    `ailys grade` read there."""
    from hub_config.appliers.exchange import SERVICE

    from .exchange.client import FACTORY

    exchange = f"{catalogue.site.listen.base_url}services/{SERVICE}/"
    lines = [
        "# Written by grading/courses.py at every start of the course's grading service: edits are lost.",
        "c = get_config()  # noqa: F821",
        f"c.CourseDirectory.course_id = {course.slug!r}",
        f"c.CourseDirectory.root = {str(course_dir(catalogue, course.slug))!r}",
        f"c.CourseDirectory.db_url = {gradebook_url(catalogue, course)!r}",
        f"c.Autograde.sanitize_preprocessors = {SANITIZE!r}",
        f"c.GenerateFeedback.preprocessors = {FEEDBACK!r}",
        "# Every exchange operation goes to the hub's exchange service, as this course's grading service.",
        *(f"c.ExchangeFactory.{step} = {cls!r}" for step, cls in FACTORY.items()),
        f"c.HubExchange.path_includes_course = True",
        "import os",
        f"c.HubExchange.service_url = os.environ.get('AILYS_EXCHANGE_URL', {exchange!r})",
    ]
    return "\n".join(lines) + "\n"


def copy_source(src: Path, dest: Path) -> list[str]:
    """Copy the course's source/ into the course folder: new and newer files only, so an
    instructor's edit made in the grading interface is kept until the repository changes."""
    copied = []
    for folder, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d != "__pycache__")
        rel = Path(folder).relative_to(src)
        (dest / rel).mkdir(parents=True, exist_ok=True)
        for name in sorted(files):
            if name.startswith("."):
                continue
            s, d = Path(folder, name), dest / rel / name
            if not d.exists() or s.stat().st_mtime > d.stat().st_mtime:
                shutil.copy2(s, d)
                copied.append(str(rel / name))
    return copied


def due_utc(due: dt.datetime | None) -> dt.datetime | None:
    if due is None:
        return None
    if due.tzinfo is None:
        due = due.replace(tzinfo=dt.UTC)  # as the exchange reads a deadline without a zone
    return due.astimezone(dt.UTC).replace(tzinfo=None)  # nbgrader's gradebook keeps naive UTC


def prepare_course(catalogue, course: Course) -> Path:
    """Make or bring up to date the course's nbgrader folder and its gradebook's assignments."""
    from nbgrader.api import Gradebook

    from .autograde.course import alembic_on_path

    root = course_dir(catalogue, course.slug)
    grading_root(catalogue).mkdir(mode=0o711, exist_ok=True)
    root.mkdir(mode=0o700, exist_ok=True)
    root.chmod(0o700)  # whatever umask or hand made it: learners must not list or read it
    source = catalogue.courses_dir / course.slug / "source"
    if source.is_dir():
        copy_source(source, root / "source")
    (root / "source").mkdir(exist_ok=True)
    (root / "nbgrader_config.py").write_text(nbgrader_config(catalogue, course))
    alembic_on_path()
    with Gradebook(gradebook_url(catalogue, course), course.slug) as gb:
        for assignment in course.assignments:
            gb.update_or_create_assignment(assignment.name, duedate=due_utc(assignment.due))
        for learner in course.learners:
            gb.update_or_create_student(learner)
    db = root / "gradebook.db"
    if db.exists():
        db.chmod(0o600)
    return root
