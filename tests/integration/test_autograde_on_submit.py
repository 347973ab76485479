"""Autograde on submit, on its own: one submission in, graded and its feedback out, within a minute,
in the gradebook like any other (what the exchange calls for practice assignments)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from nbgrader.api import Gradebook

from grading.autograde.engine import Settings
from grading.autograde.on_submit import grade_submission
from tests.grading_hostile.build import ASSIGNMENT, SECRET, grading_account, make_course, submit

GRADER = "grd-onsubmit"


@pytest.fixture(scope="module")
def grader():
    with grading_account(GRADER) as name:
        yield name


@pytest.fixture
def settings(grader):
    work = Path(tempfile.mkdtemp(prefix="grd-work-"))
    work.chmod(0o755)
    yield Settings(timeout=5, total_timeout=50, user=grader, work_dir=work, preload=("numpy",))
    shutil.rmtree(work, ignore_errors=True)


def test_a_submission_is_graded_and_its_feedback_ready_within_a_minute(settings, tmp_path):
    root = make_course(tmp_path / "course")
    # what the exchange holds: the learner's files, somewhere else than the course folder
    submitted = submit(root, "grd-ann", "def square(x):\n    return x * x\n").parent
    exchange_copy = tmp_path / "exchange" / "grd-ann"
    exchange_copy.parent.mkdir()
    shutil.move(submitted, exchange_copy)

    # within a minute: the sandbox stops a submission at total_timeout (50 s here), whatever it does
    result = grade_submission(
        root, ASSIGNMENT, "grd-ann", exchange_copy, settings=settings, course_id="grd-course"
    )
    assert (result.status, result.score, result.max_score, result.reasons) == ("graded", 1.0, 1.0, [])
    html = (result.feedback_dir / "ps1.html").read_text()
    assert "square" in html and SECRET not in html
    with Gradebook(f"sqlite:///{root}/gradebook.db", "grd-course") as gb:  # the instructor sees it
        assert gb.find_submission(ASSIGNMENT, "grd-ann").score == 1.0


def test_a_broken_submission_gets_zero_and_its_reason_in_the_feedback(settings, tmp_path):
    root = make_course(tmp_path / "course")
    submit(root, "grd-bob", "while True:\n    pass\n")
    result = grade_submission(root, ASSIGNMENT, "grd-bob", settings=settings, course_id="grd-course")
    assert result.score == 0 and any("time limit of 5 s" in r for r in result.reasons)
    assert "time limit of 5 s" in (result.feedback_dir / "ps1.html").read_text()


def test_no_submission_is_a_clear_error(settings, tmp_path):
    root = make_course(tmp_path / "course")
    with pytest.raises(FileNotFoundError, match="no submission of ps1 by grd-nobody"):
        grade_submission(root, ASSIGNMENT, "grd-nobody", settings=settings)
