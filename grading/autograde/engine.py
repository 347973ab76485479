"""Grade every collected submission of an assignment: the local backend and what backends share.

The process that calls ``grade`` is the only one that touches the gradebook (prepare, record);
workers only execute notebooks, each in its own sandboxed kernel. A submission that breaks
anything (its notebook, its kernel, a worker) is recorded as failed with a reason and the batch
goes on.
"""

from __future__ import annotations

import os
import pwd
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hub_config.schema.course import Autograde

from .course import Course, Outcome, SubmissionError
from .execute import Job
from .sandbox import Limits
from .worker import Workers

# The defaults of a course's `autograde:` (the schema holds them and their meaning, docs/reference.md).
COURSE_DEFAULTS = Autograde()


@dataclass(frozen=True)
class Settings:
    """How to grade: the course's autograde settings and the site's grading settings, resolved
    (on_submit.settings_for); left out, a limit is the schema's default."""

    timeout: int = int(COURSE_DEFAULTS.timeout)  # seconds per cell
    total_timeout: int = int(COURSE_DEFAULTS.total_timeout)  # seconds per submission
    memory: int = COURSE_DEFAULTS.memory
    processes: int = COURSE_DEFAULTS.processes
    file_size: int = COURSE_DEFAULTS.file_size
    max_output: int = COURSE_DEFAULTS.max_output
    preload: tuple[str, ...] = tuple(COURSE_DEFAULTS.preload)
    user: str | None = None  # grading account (None: the current one)
    work_dir: Path = Path(tempfile.gettempdir())
    hide: tuple[str, ...] = ()  # more folders the sandbox must not see (homes, data dir...)

    def limits(self) -> dict:
        return asdict(
            Limits(
                memory=self.memory,
                processes=self.processes,
                file_size=self.file_size,
                cpu_time=self.total_timeout + 30,
            )
        )

    def owner(self) -> tuple[int, int] | None:
        if not self.user:
            return None
        account = pwd.getpwnam(self.user)
        return account.pw_uid, account.pw_gid


@dataclass
class Summary:
    outcomes: list[Outcome] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0
    # Local workers: per graded submission {"student", "cpu_s", "start", "end"} (epoch seconds),
    # for the energy records (footprint/autograde.py).
    usage: list[dict] = field(default_factory=list)

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.status == "failed" or o.reasons]


def work_root(settings: Settings, course: Course, assignment: str) -> Path:
    """A fresh folder for this run's working copies: traversable, not listable, by the grader."""
    settings.work_dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix=f"grade-{assignment}-", dir=settings.work_dir))
    root.chmod(0o711)
    return root


def make_job(course: Course, settings: Settings, student: str, assignment: str, root: Path) -> Job:
    """Prepare one submission (gradebook side) and its working copy; SubmissionError if it cannot."""
    notebooks = course.prepare(student, assignment)
    copy = course.working_copy(student, assignment, root, settings.owner())
    hide = [str(course.root), *settings.hide]
    return Job(
        key=student,
        workdir=str(copy),
        notebooks=notebooks,
        timeout=settings.timeout,
        total_timeout=settings.total_timeout,
        max_output=settings.max_output,
        limits=settings.limits(),
        hide=hide,
        work_root=os.path.realpath(settings.work_dir),
        preload=list(settings.preload),
    )


def record_result(course: Course, assignment: str, result: dict) -> Outcome:
    student = result["key"]
    if result.get("error"):
        return course.record_failure(student, assignment, result["error"])
    try:
        return course.record(student, assignment, result["notebooks"], list(result["reasons"]))
    except Exception as error:  # noqa: BLE001 - a notebook that nbgrader cannot grade is the learner's
        return course.record_failure(student, assignment, f"nbgrader could not grade the result: {error}")


def select(course: Course, assignment: str, only_new: bool, students: list[str] | None = None):
    everyone = course.students(assignment) if students is None else students
    todo = [s for s in everyone if not (only_new and course.is_graded(s, assignment))]
    return todo, [s for s in everyone if s not in todo]


def grade_local(
    course: Course,
    assignment: str,
    settings: Settings,
    workers: int = 2,
    only_new: bool = False,
    students: list[str] | None = None,
    progress: Callable[[Outcome], None] | None = None,
    feedback: bool = False,
) -> Summary:
    """Grade the submissions on this host with ``workers`` parallel sandboxed kernels."""
    started = time.monotonic()
    todo, skipped = select(course, assignment, only_new, students)
    summary = Summary(skipped=skipped)
    if not todo:
        return summary
    root = work_root(settings, course, assignment)

    def done(outcome: Outcome) -> None:
        if feedback:
            course.generate_feedback(outcome.student, assignment)
        summary.outcomes.append(outcome)
        if progress:
            progress(outcome)

    def taken(result: dict) -> dict:
        if "usage" in result:
            summary.usage.append({"student": result["key"], **result.pop("usage")})
        return result

    workers_ = Workers(workers, list(settings.preload), settings.user, log=settings.work_dir / "workers.log")
    try:
        pending = 0
        for student in todo:
            try:
                job = make_job(course, settings, student, assignment, root)
            except SubmissionError as error:
                done(course.record_failure(student, assignment, str(error)))
                continue
            except OSError as error:  # its files cannot be copied (a huge or unreadable file...)
                done(course.record_failure(student, assignment, f"its files could not be copied: {error}"))
                continue
            workers_.submit(job)
            pending += 1
            while not workers_.results.empty():  # record what finished while we prepared
                done(record_result(course, assignment, taken(workers_.results.get())))
                pending -= 1
        while pending:
            done(record_result(course, assignment, taken(workers_.results.get())))
            pending -= 1
    finally:
        workers_.close()
        shutil.rmtree(root, ignore_errors=True)
    summary.seconds = time.monotonic() - started
    return summary
