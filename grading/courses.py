"""Each course's nbgrader course folder, made from course.yaml and courses/<slug>/source/ alone.

    <data_dir>/grading/<slug>/          0700, the hub's account: no learner can read it
        source/<assignment>/            copied from courses/<slug>/source/ (newer files win)
        nbgrader_config.json            written here at every start: course id, gradebook, exchange
        gradebook.db                    SQLite, unless a PostgreSQL URL is configured
        release/ submitted/ autograded/ feedback/      nbgrader's own folders

The per-course grading service (service.py) calls ``prepare_course`` when it starts, and
`ailys grade`/`ailys grades export` read the same folder (``course_dir``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
from pathlib import Path

from hub_config.schema import Course

from . import accommodations

GRADING_DIR = "grading"
# Data, not code: nbgrader (traitlets) loads nbgrader_config.json as it loads nbgrader_config.py.
CONFIG_FILE = "nbgrader_config.json"
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


def nbgrader_config(catalogue, course: Course) -> dict:
    """The course folder's nbgrader settings (CONFIG_FILE): what formgrader, nbgrader's commands
    and `ailys grade` read there. Plain data: traitlets loads it, nothing runs."""
    from .exchange.client import FACTORY

    return {
        "CourseDirectory": {
            "course_id": course.slug,
            "root": str(course_dir(catalogue, course.slug)),
            "db_url": gradebook_url(catalogue, course),
        },
        "Autograde": {"sanitize_preprocessors": SANITIZE},
        "GenerateFeedback": {"preprocessors": FEEDBACK},
        # Every exchange operation goes to the hub's exchange service, as this course's grading
        # service; HubExchange.service_url is left to its default, $AILYS_EXCHANGE_URL.
        "ExchangeFactory": dict(FACTORY),
        "HubExchange": {"path_includes_course": True},
    }


def write_nbgrader_config(root: Path, settings: dict) -> Path:
    """Write CONFIG_FILE in the course folder, and remove a nbgrader_config.py of older versions:
    nbgrader would merge both, and two files could disagree."""
    path = root / CONFIG_FILE
    tmp = path.with_name(f".{CONFIG_FILE}.tmp")
    tmp.write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)  # never half a file for a formgrader reading it
    (root / "nbgrader_config.py").unlink(missing_ok=True)
    return path


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
    write_nbgrader_config(root, nbgrader_config(catalogue, course))
    alembic_on_path()
    accommodations.refresh(root, course)  # course.yaml's due or opens may have changed
    with Gradebook(gradebook_url(catalogue, course), course.slug) as gb:
        for assignment in course.assignments:
            gb.update_or_create_assignment(assignment.name, duedate=due_utc(assignment.due))
        for learner in catalogue.learners(course):
            gb.update_or_create_student(learner)
        accommodations.sync_gradebook(gb, root)
    db = root / "gradebook.db"
    if db.exists():
        db.chmod(0o600)
    return root


def sync_extensions(catalogue, course: Course) -> int:
    """Give the gradebook's existing submissions their learners' extensions now (after a change of
    accommodations); 0 when the course has no gradebook yet (its grading service makes it)."""
    from nbgrader.api import Gradebook

    from .autograde.course import alembic_on_path

    url = gradebook_url(catalogue, course)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return 0
    alembic_on_path()
    with Gradebook(url, course.slug) as gb:
        return accommodations.sync_gradebook(gb, course_dir(catalogue, course.slug))
