"""The hostile submissions: each ends graded (zero, with a reason), none blocks the batch, none
reads or writes what it should not, none reaches the network, and the machine stays responsive.

Real parts: nbgrader's own course folder and gradebook, a real grading account (grd-grader),
real kernels in real namespaces, a real listening socket standing in for the hub's API.
"""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import nbformat
import psutil
import pytest

from grading.autograde.course import Course
from grading.autograde.engine import Settings, grade_local
from tests.grading_hostile.build import ASSIGNMENT, SECRET, make_course, marker, submit

GRADER = "grd-grader"
GOOD = "def square(x):\n    return x * x\n"
ALICE_MARK = "ALICE-ANSWER-5c1e"


def hostile_answers(course: Path, work_dir: Path, port: int) -> dict[str, str]:
    """Learner name -> the code in their answer cell."""
    return {
        "grd-loop": "while True:\n    pass\n" + GOOD,
        "grd-memory": "hog = bytearray(10 * 1024**3)\n" + GOOD,
        "grd-forkbomb": "import os\nwhile True:\n    os.fork()\n",
        "grd-print": "import sys\nfor _ in range(100):\n    sys.stdout.write('x' * 1024 * 1024 + '\\n')\n",
        "grd-write": "targets = ["
        + ", ".join(
            repr(str(p))
            for p in [
                course / "pwned.txt",
                course / "submitted" / "grd-alice" / ASSIGNMENT / "ps1.ipynb",
                work_dir / "pwned.txt",
                "/tmp/grd-escape.txt",
                "/var/tmp/grd-escape.txt",
            ]
        )
        + "]\n"
        "done = []\nfor t in targets:\n    try:\n        open(t, 'w').write('pwned'); done.append(t)\n"
        "    except OSError as e:\n        print('blocked', t, e)\n"
        "raise PermissionError(f'wrote {done}')\n",
        "grd-read-other": f"print(open({str(course / 'submitted' / 'grd-alice' / ASSIGNMENT / 'ps1.ipynb')!r}).read())\n"
        "import glob\nprint(glob.glob('/tmp/**/*.ipynb', recursive=True))\n",
        "grd-read-source": f"print(open({str(course / 'source' / ASSIGNMENT / 'ps1.ipynb')!r}).read())\n",
        "grd-hub-api": f"import socket\nsocket.create_connection(('127.0.0.1', {port}), timeout=5).sendall(b'GET /hub/api')\n",
    }


@pytest.fixture
def work_dir(work_dir):
    """The shared work folder, and nothing left of what grd-write may have written outside it."""
    yield work_dir
    for escaped in ("/tmp/grd-escape.txt", "/var/tmp/grd-escape.txt"):
        Path(escaped).unlink(missing_ok=True)


@pytest.fixture
def hub_api():
    """A real listening socket on loopback; records whoever connects."""
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.2)
    seen, stop = [], threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                seen.append(server.accept()[1])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1], seen
    stop.set()
    thread.join()
    server.close()


class ProcessCount:
    """Count the grading account's processes every 0.2 s while grading; the peak says whether the
    process limit held (a fork bomb that escaped it would take the machine down)."""

    def __init__(self, user: str):
        self.user, self.peak, self.stop = user, 0, threading.Event()
        self.thread = threading.Thread(target=self._probe, daemon=True)

    def _probe(self) -> None:
        while not self.stop.wait(0.2):
            count = sum(1 for p in psutil.process_iter(["username"]) if p.info["username"] == self.user)
            self.peak = max(self.peak, count)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join()


def test_hostile_submissions_end_graded_with_a_reason(grader, work_dir, hub_api, tmp_path):
    port, connections = hub_api
    root = make_course(tmp_path / "course")
    submit(root, "grd-alice", GOOD + f"# {ALICE_MARK}\n")
    answers = hostile_answers(root, work_dir, port)
    for student, code in answers.items():
        submit(root, student, code)
    submit(root, "grd-invalid", raw='{"cells": [ this is not json')

    def edit_test(nb):
        for cell in nb.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == "test_square":
                cell.source = "pass  # tests removed"

    submit(root, "grd-edit-test", "def square(x):\n    return x + x\n", edit=edit_test)
    course = Course(root, "grd-course")
    settings = Settings(
        timeout=5,
        total_timeout=60,
        memory=512 * 1024**2,
        processes=48,
        user=grader,
        work_dir=work_dir,
        max_output=4 * 1024**2,
    )
    with ProcessCount(grader) as probe:
        summary = grade_local(course, ASSIGNMENT, settings, workers=2)

    outcomes = {o.student: o for o in summary.outcomes}
    assert sorted(outcomes) == sorted([*answers, "grd-alice", "grd-invalid", "grd-edit-test"])
    assert (outcomes["grd-alice"].score, outcomes["grd-alice"].reasons) == (1.0, [])
    for student, outcome in outcomes.items():
        if student == "grd-alice":
            continue
        assert outcome.score == 0, f"{student} scored {outcome.score}"
        assert outcome.reasons, f"{student} got no reason"
        assert marker(root, student)["reasons"] == outcome.reasons
    why = {s: " ".join(o.reasons) for s, o in outcomes.items()}
    assert "time limit of 5 s" in why["grd-loop"]
    assert "MemoryError" in why["grd-memory"] and "memory limit" in why["grd-memory"]
    assert "BlockingIOError" in why["grd-forkbomb"] or "time limit" in why["grd-forkbomb"]
    assert "printed more than 4 MB" in why["grd-print"]
    assert "not a valid notebook" in why["grd-invalid"] and outcomes["grd-invalid"].status == "failed"
    assert "test_square" in why["grd-edit-test"]
    assert "Network is unreachable" in why["grd-hub-api"]
    assert "FileNotFoundError" in why["grd-read-source"] and "FileNotFoundError" in why["grd-read-other"]

    # nothing read what it should not: the executed notebooks hold no solution and no other answer
    for student in outcomes:
        text = (root / "autograded" / student / ASSIGNMENT / "ps1.ipynb").read_text()
        assert SECRET not in text, f"{student} read the solution"
        if student != "grd-alice":
            assert ALICE_MARK not in text, f"{student} read grd-alice's submission"
    # nothing written outside its copy, nothing connected to the hub's port
    assert not (root / "pwned.txt").exists() and not (work_dir / "pwned.txt").exists()
    assert ALICE_MARK in (root / "submitted" / "grd-alice" / ASSIGNMENT / "ps1.ipynb").read_text()
    assert not Path("/tmp/grd-escape.txt").exists() and not Path("/var/tmp/grd-escape.txt").exists()
    assert connections == []
    # the print is capped (the loop was stopped by its 5 s cell limit, not the 60 s one: above)
    printed = nbformat.read(root / "autograded" / "grd-print" / ASSIGNMENT / "ps1.ipynb", as_version=4)
    assert len(nbformat.writes(printed)) < 8 * 1024**2
    # the fork bomb stayed within the process limit: 48, plus the 2 workers, their templates, and
    # each sandbox's init and kernel, which the limit counts but need not stop
    assert probe.peak <= settings.processes + 8, f"the grading account ran {probe.peak} processes"
    # no process of the grading account is left
    left = [p for p in psutil.process_iter(["username"]) if p.info["username"] == grader]
    _, alive = psutil.wait_procs(left, timeout=10)  # a kernel's namespace may take a moment to go
    assert [p.info for p in alive] == []


def test_a_failure_reason_reaches_the_feedback(grader, work_dir, tmp_path):
    root = make_course(tmp_path / "course")
    submit(root, "grd-loop", "while True:\n    pass\n")
    submit(root, "grd-invalid", raw="{not json")
    course = Course(root, "grd-course")
    settings = Settings(timeout=3, total_timeout=30, user=grader, work_dir=work_dir)
    grade_local(course, ASSIGNMENT, settings, workers=2, feedback=True)
    loop = (root / "feedback" / "grd-loop" / ASSIGNMENT / "ps1.html").read_text()
    invalid = (root / "feedback" / "grd-invalid" / ASSIGNMENT / "ps1.html").read_text()
    assert "Autograding notes" in loop and "time limit of 3 s" in loop
    assert "not a valid notebook" in invalid
    assert SECRET not in loop + invalid
