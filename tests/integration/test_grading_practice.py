"""Autograde on submit (practice work): a learner submits from their Assignments panel, and within
a minute their feedback is released to them, graded in the sandbox, with no instructor action;
the instructor sees the grade in the course's grading interface like any other.

A real hub, the course's grading service, the exchange, a learner's own server (own Unix account).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from html import unescape
from pathlib import Path

import nbformat
import pytest

from hub_config.appliers.spawner import LEARNER_JUPYTER_CONFIG
from tests.conftest import OUTPUT
from tests.integration.test_exchange import Learner, wait_for_exchange
from tests.integration.test_grading_formgrader import HIDDEN, Instructor, source_notebook, wait_for_grading
from tests.services import free_port
from tests.services.hub import RunningHub, course, wait_until

pytestmark = pytest.mark.hub

REPO = Path(__file__).resolve().parents[2]
SLUG, PROF, LEARNER, GRADER = "fg-practice", "fg-prof-p", "fg-dan", "fg-pgrader"
QUIZ = "quiz"


@pytest.fixture(scope="module")
def hub():
    shutil.copytree(REPO / "spawners" / "jupyter-config" / "learner", LEARNER_JUPYTER_CONFIG, dirs_exist_ok=True)
    subprocess.run(["userdel", GRADER], capture_output=True)
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", GRADER], check=True)
    practice = course(SLUG, [PROF], [LEARNER], assignments=[{"name": QUIZ, "autograde_on_submit": True}])
    running = RunningHub([practice], site={"grading": {"user": GRADER}, "formgraders": {"port": free_port()}},
                         start_timeout=180)  # fmt: skip
    folder = running.root / "courses" / SLUG / "source" / QUIZ
    folder.mkdir(parents=True)
    nbformat.write(source_notebook(), folder / f"{QUIZ}.ipynb")
    try:
        running.start()
        wait_for_exchange(running)
        wait_for_grading(running, SLUG)
        yield running
    finally:
        OUTPUT.mkdir(exist_ok=True)
        try:
            (OUTPUT / "test_grading_practice-hub.log").write_text(running.log())
        except OSError:
            pass
        running.stop()
        subprocess.run(["userdel", GRADER], capture_output=True)


def test_a_submission_is_graded_and_its_feedback_released_within_a_minute(hub):
    prof = Instructor(hub, PROF, SLUG)
    prof.post(f"assignment/{QUIZ}/assign")
    prof.post(f"assignment/{QUIZ}/release")
    dan = Learner(hub, LEARNER)
    dan.action("fetch", SLUG, QUIZ)
    path = f"{SLUG}/{QUIZ}/{QUIZ}.ipynb"
    nb = dan.contents(path).json()["content"]
    for cell in nb["cells"]:
        if cell["metadata"].get("nbgrader", {}).get("grade_id") == "answer":
            cell["source"] = "x = 42"
    dan.save_notebook(path, nb)
    assert dan.action("submit", SLUG, QUIZ)["success"]

    def feedback_released():
        listed = dan.action("fetch_feedback", SLUG, QUIZ)["value"]
        subs = [s for a in listed if a["status"] == "submitted" for s in a["submissions"]]
        return next((s for s in subs if s["has_local_feedback"]), None)

    sub = wait_until(feedback_released, 60, "the feedback of dan's submission", every=2)
    html = dan.contents(f"{SLUG}/{QUIZ}/feedback/{sub['timestamp']}/{QUIZ}.ipynb".replace(".ipynb", ".html")).json()
    text = unescape(re.sub(r"<[^>]+>", "", html["content"]))
    assert "Score: 1.0 / 3.0" in text  # the autograded test; the written answer waits for the instructor
    assert HIDDEN not in html["content"] and "x > 0" not in text
    # the instructor sees it in formgrader like any other submission
    [row] = prof.get(f"submissions/{QUIZ}")
    assert (row["student"], row["score"]) == (LEARNER, 1.0)
    assert "autograded on submit" in hub.log()
