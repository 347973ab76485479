"""`ailys grade` on the local backend, end to end: a real site file and course folder, nbgrader's
own gradebook, kernels run as a real grading account (grd-local)."""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from nbgrader.api import Gradebook

from grading.autograde.course import Course
from grading.autograde.engine import Settings, grade_local
from tests.grading_hostile.build import ASSIGNMENT, grading_account, make_course, marker, submit

GRADER = "grd-local"
AILYS = str(Path(sys.executable).parent / "ailys")
ANSWERS = {
    "right": "def square(x):\n    return x * x\n",
    "wrong": "def square(x):\n    return x + x\n",
    "error": "def square(x):\n    return undefined_name\n",
}


@pytest.fixture(scope="module")
def grader():
    with grading_account(GRADER) as name:
        yield name


@pytest.fixture
def site(tmp_path, grader):
    """A site file whose courses_dir holds grd-course, itself an nbgrader course folder."""
    work = Path(tempfile.mkdtemp(prefix="grd-work-"))
    work.chmod(0o755)
    courses = tmp_path / "courses"
    root = make_course(courses / "grd-course")
    (root / "course.yaml").write_text(
        yaml.safe_dump(
            {
                "slug": "grd-course",
                "title": {"fr": "Cours", "en": "Course"},
                "kind": "academic",
                "instructors": ["grd-teacher"],
                "learners": [f"grd-{n}" for n in ANSWERS],
                "start": "2026-01-01",
                "end": "2026-12-31",
                "assignments": [{"name": ASSIGNMENT}],
                "autograde": {"timeout": "5s", "memory": "768M", "preload": ["numpy"]},
            }
        )
    )
    site_file = tmp_path / "grd-site.yaml"
    site_file.write_text(
        yaml.safe_dump(
            {
                "name": "grd-site",
                "data_dir": str(tmp_path / "data"),
                "courses_dir": str(courses),
                "grading": {"user": grader, "work_dir": str(work), "workers": 2},
            }
        )
    )
    (tmp_path / "data").mkdir()
    yield site_file, root
    shutil.rmtree(work, ignore_errors=True)


def ailys(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([AILYS, *args], capture_output=True, text=True, timeout=300)


def scores(root: Path) -> dict[str, float]:
    with Gradebook(f"sqlite:///{root}/gradebook.db", "grd-course") as gb:
        return {s.student.id: s.score for s in gb.find_assignment(ASSIGNMENT).submissions}


def test_ailys_grade_grades_everyone_then_only_what_is_new(site):
    site_file, root = site
    for name, answer in ANSWERS.items():
        submit(root, f"grd-{name}", answer)
    first = ailys("grade", "grd-course", ASSIGNMENT, "--course-dir", str(root), "--site", str(site_file))
    assert first.returncode == 0, first.stderr
    assert "graded 3, failed 0, skipped (already graded) 0" in first.stdout
    assert "3 done, 0 failed, 0 remaining" in first.stderr  # the progress bar's last state
    assert scores(root) == {"grd-right": 1.0, "grd-wrong": 0.0, "grd-error": 0.0}
    autograded = {s: (root / "autograded" / s / ASSIGNMENT / "ps1.ipynb").read_bytes() for s in scores(root)}

    again = ailys(
        "grade", "grd-course", ASSIGNMENT, "--only-new", "--course-dir", str(root), "--site", str(site_file)
    )
    assert "graded 0, failed 0, skipped (already graded) 3" in again.stdout
    assert {
        s: (root / "autograded" / s / ASSIGNMENT / "ps1.ipynb").read_bytes() for s in autograded
    } == autograded

    # a new submission of one learner is graded; the others are not touched
    submit(root, "grd-wrong", ANSWERS["right"])
    third = ailys(
        "grade", "grd-course", ASSIGNMENT, "--only-new", "--course-dir", str(root), "--site", str(site_file)
    )
    assert "graded 1, failed 0, skipped (already graded) 2" in third.stdout
    assert scores(root) == {"grd-right": 1.0, "grd-wrong": 1.0, "grd-error": 0.0}


def test_grading_twice_changes_nothing(site):
    _, root = site
    for name, answer in ANSWERS.items():
        submit(root, f"grd-{name}", answer)
    course = Course(root, "grd-course")
    settings = Settings(timeout=5, user=GRADER, work_dir=Path(tempfile.gettempdir()), preload=("numpy",))
    grade_local(course, ASSIGNMENT, settings, workers=2)
    before = scores(root), {s: marker(root, s) for s in scores(root)}
    grade_local(course, ASSIGNMENT, settings, workers=2)
    assert (scores(root), {s: marker(root, s) for s in scores(root)}) == before


def test_no_update_is_lost_with_many_submissions_at_once(site):
    """20 learners, 4 workers: every grade reaches the gradebook, once."""
    _, root = site
    learners = {f"grd-l{i:02d}": ANSWERS["right" if i % 2 else "wrong"] for i in range(20)}
    for name, answer in learners.items():
        submit(root, name, answer)
    course = Course(root, "grd-course")
    settings = Settings(timeout=5, user=GRADER, work_dir=Path(tempfile.gettempdir()), preload=("numpy",))
    summary = grade_local(course, ASSIGNMENT, settings, workers=4)
    assert len(summary.outcomes) == 20
    assert scores(root) == {n: (1.0 if int(n[-2:]) % 2 else 0.0) for n in learners}


def test_bad_course_or_assignment_names_the_problem(site):
    site_file, _ = site
    wrong = ailys("grade", "grd-nope", ASSIGNMENT, "--site", str(site_file))
    assert wrong.returncode != 0 and "no course 'grd-nope'" in wrong.stderr
    wrong = ailys("grade", "grd-course", "ps9", "--site", str(site_file))
    assert wrong.returncode != 0 and "'ps9' is not an assignment of grd-course (ps1)" in wrong.stderr
