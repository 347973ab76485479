"""A kernel that dies, freezes or loses its channels never earns a point, whatever the timing.

Every case of dying_cases.py, several copies each, in one batch mixed with good submissions,
graded by ``grade_local`` with two workers while two busy loops hold both cores. Real parts: a
grading account of its own (grd-die-grader), nbgrader's course folder and gradebook, real kernels
in real namespaces; on the Slurm backend, the real test cluster.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import nbformat
import pytest

from grading.autograde.course import Course
from grading.autograde.engine import Settings, grade_local
from grading.autograde.slurm import grade_slurm
from hub_config.schema import Grading
from tests.grading_hostile.build import ASSIGNMENT, make_course, marker, submit
from tests.grading_hostile.dying_cases import DYING, RACING, SQUARE, SURVIVING
from tests.services.slurm import cluster_for_tests

GRADER = "grd-die-grader"
COPIES = 3
WRONG = "def square(x):\n    return x + x\n"
# a wrong answer that publishes a result "1" for the test cell, which nbgrader reads as partial credit
FAKE_RESULT = WRONG + "ip = get_ipython()\nip.events.register('pre_run_cell', lambda *a: ip.displayhook(1))\n"


@pytest.fixture
def both_cores_busy():
    loops = [subprocess.Popen(["sh", "-c", "while :; do :; done"]) for _ in range(2)]
    yield
    for loop in loops:
        loop.kill()
        loop.wait()


def _test_cell(root: Path, student: str) -> nbformat.NotebookNode:
    nb = nbformat.read(root / "autograded" / student / ASSIGNMENT / "ps1.ipynb", as_version=4)
    return next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade_id") == "test_square")


def _forge_a_skipped_test(nb) -> None:
    """A test cell tagged for nbclient to skip, carrying the outputs of a passed run."""
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_square":
            cell.metadata["tags"] = ["skip-execution"]
            cell.execution_count, cell.outputs = 2, [nbformat.v4.new_output("stream", text="ok\n")]


def test_no_way_of_dying_earns_a_point_under_load(grader, work_dir, tmp_path, both_cores_busy):
    root = make_course(tmp_path / "course")
    # named round by round, so that the workers' batch mixes every case with good submissions
    for copy in range(COPIES):
        for name, code in {**DYING, **RACING}.items():
            submit(root, f"grd-{copy}-{name}", code)
        submit(root, f"grd-{copy}-good", SQUARE)
        submit(root, f"grd-{copy}-zgood", SQUARE)
    for name, code in SURVIVING.items():
        submit(root, f"grd-0-{name}", code)
    submit(root, "grd-0-forged-skip", WRONG, edit=_forge_a_skipped_test)
    submit(root, "grd-0-fake-result", FAKE_RESULT)
    settings = Settings(
        timeout=3, total_timeout=30, memory=512 * 1024**2, user=grader, work_dir=work_dir, preload=("numpy",)
    )
    summary = grade_local(Course(root, "grd-course"), ASSIGNMENT, settings, workers=2)

    outcomes = {o.student: o for o in summary.outcomes}
    assert len(outcomes) == COPIES * (len(DYING) + len(RACING) + 2) + len(SURVIVING) + 2
    for student, outcome in sorted(outcomes.items()):
        case = student.split("-", 2)[2]
        reasons = " ".join(outcome.reasons)
        assert marker(root, student)["reasons"] == outcome.reasons
        if case == "fake-result":  # a wrong answer: no reason owed, no partial credit either
            assert outcome.score == 0, f"{student}: {outcome}"
        elif case in DYING or case == "forged-skip":
            assert (outcome.score, bool(reasons)) == (0, True), f"{student}: {outcome}"
            test = _test_cell(root, student)
            assert test.outputs[0].output_type == "error", f"{student}: {test.outputs}"  # what decides
            assert "test_square" in reasons, f"{student}: {reasons}"
        elif case in RACING:  # the test answered by a live kernel, or 0 and why
            assert (outcome.score, bool(reasons)) in [(1, False), (0, True)], f"{student}: {outcome}"
        else:
            assert (outcome.score, outcome.reasons) == (1, []), f"{student}: {outcome}"
    why = {s.split("-", 2)[2]: " ".join(o.reasons) for s, o in outcomes.items()}
    assert "the kernel died" in why["kill-parent"] and "the kernel died" in why["segfault-ctypes"]
    assert "time limit of 3 s" in why["freeze"] and "time limit of 3 s" in why["stop-parent-then-exit"]
    assert "channel was lost" in why["close-iopub"]
    assert "not answer: test_square" in why["forged-skip"]


@pytest.fixture(scope="module")
def cluster(request):
    yield from cluster_for_tests(request, nodes=2, cpus=1, memory_mb=4096)


@pytest.mark.slurm
def test_no_way_of_dying_earns_a_point_on_slurm(cluster, grader, work_dir, tmp_path):
    cluster.add_user(grader)
    root = make_course(tmp_path / "course")
    for name, code in DYING.items():
        submit(root, f"grd-0-{name}", code)
    submit(root, "grd-0-good", SQUARE)
    settings = Settings(timeout=3, total_timeout=30, user=grader, work_dir=work_dir, preload=("numpy",))
    grading = Grading(user=grader, partition="cpu", account=cluster.accounts[0], throttle=2)
    summary = grade_slurm(
        Course(root, "grd-course"), ASSIGNMENT, settings, grading, env=cluster.env, timeout=300
    )

    outcomes = {o.student.split("-", 2)[2]: o for o in summary.outcomes}
    assert sorted(outcomes) == sorted([*DYING, "good"])
    assert (outcomes.pop("good").score, marker(root, "grd-0-good")["reasons"]) == (1, [])
    for case, outcome in outcomes.items():
        # a task that ended without a result (seen once under heavy load, die-before-next-cell) is
        # recorded failed with that reason: zero all the same
        why = " ".join(outcome.reasons)
        assert outcome.score == 0 and ("test_square" in why or "without a result" in why), (
            f"{case}: {outcome}"
        )
