"""Autograde on submit: grade one new submission and produce its feedback, for the exchange to call.

    from grading.autograde.on_submit import grade_submission
    result = grade_submission(course_dir, "ps1", "alice", submission_path)
    results = grade_submissions(course_dir, "ps1", {"alice": path_a, "bob": path_b}, workers=2)

``submission_path`` is the folder of the learner's submitted files (the exchange's copy); it is
copied to <course_dir>/submitted/<student>/<assignment>/ as nbgrader's collect would, unless it is
that folder already. The submission is graded exactly as `ailys grade` grades it (sandboxed,
limits of the course) and its feedback generated in <course_dir>/feedback/<student>/<assignment>/;
the exchange releases that folder to the learner. The gradebook is written by the calling
process only: the exchange must call this for one submission of a course at a time (for
instance from one queue per course), as `ailys grade` does. The caller's environment (the
exchange's hub token) never reaches the kernel: workers start from the allow-list of sandbox.py.
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from .course import Course
from .engine import Settings, grade_local


@dataclass(frozen=True)
class Result:
    student: str
    assignment: str
    status: str  # graded | failed
    score: float
    max_score: float
    reasons: list[str] = field(default_factory=list)
    feedback_dir: Path | None = None  # the HTML feedback files to release to the learner


def grade_submission(
    course_dir: Path | str,
    assignment: str,
    student: str,
    submission_path: Path | str | None = None,
    *,
    settings: Settings | None = None,
    course_id: str = "",
) -> Result:
    """Grade one submission now and generate its feedback; see the module's documentation."""
    [result] = grade_submissions(
        course_dir, assignment, {student: submission_path}, settings=settings, course_id=course_id
    )
    return result


def grade_submissions(
    course_dir: Path | str,
    assignment: str,
    submissions: dict[str, Path | str | None],
    *,
    settings: Settings | None = None,
    course_id: str = "",
    workers: int = 1,
    catalogue=None,
) -> list[Result]:
    """Grade one submission of each of several learners ({student: submission folder}) in one
    run of ``workers`` sandboxed kernels (a burst of submissions shares the workers' start).
    With the site's ``catalogue``, each graded submission gets its energy record (footprint/),
    as in `ailys grade`; one that cannot be stored is logged, the grades stand."""
    course = Course(course_dir, course_id)
    for student, submission_path in submissions.items():
        target = course.submitted(student, assignment)
        if submission_path is not None and Path(submission_path).resolve() != target.resolve():
            if target.exists():
                shutil.rmtree(target)
            shutil.copytree(submission_path, target)
        if not target.is_dir():
            raise FileNotFoundError(f"no submission of {assignment} by {student} in {target}")
    summary = grade_local(
        course,
        assignment,
        settings or Settings(),
        workers=max(1, min(workers, len(submissions))),
        students=list(submissions),
        feedback=True,
    )
    if catalogue is not None:
        from footprint.autograde import record_local_run

        if error := record_local_run(catalogue, summary, course_id, assignment, settings or Settings()):
            logging.getLogger("ailys.grade").warning("energy records of %s not stored: %s", assignment, error)
    results = []
    for outcome in summary.outcomes:
        feedback = Path(
            course.coursedir.format_path(course.coursedir.feedback_directory, outcome.student, assignment)
        )
        results.append(
            Result(
                outcome.student,
                assignment,
                outcome.status,
                outcome.score,
                outcome.max_score,
                outcome.reasons,
                feedback if feedback.is_dir() else None,
            )
        )
    return results


def settings_for(catalogue, course) -> Settings:
    """Resolve the course's autograde limits and the site's grading settings."""
    site, auto = catalogue.site, course.autograde
    work_dir = (
        site.grading.work_dir
        if site.grading.work_dir.is_absolute()
        else catalogue.data_dir / site.grading.work_dir
    )
    user = site.grading.user if os.geteuid() == 0 else None  # not root: the current account runs them
    hide = tuple(str(p) for p in (catalogue.data_dir, catalogue.courses_dir) if p.exists())
    return Settings(
        timeout=auto.timeout,
        total_timeout=auto.total_timeout,
        memory=auto.memory,
        processes=auto.processes,
        file_size=auto.file_size,
        max_output=auto.max_output,
        preload=tuple(auto.preload),
        user=user,
        work_dir=work_dir,
        hide=hide,
    )


def settings_from_catalogue(catalogue, slug: str) -> Settings:
    """The course's autograde limits and the site's grading account, as `ailys grade` uses them."""
    return settings_for(catalogue, catalogue.course(slug))
