"""Autograde on submit (practice work): a learner submits from their Assignments panel, and within
a minute their feedback is released to them, graded in the sandbox, with no instructor action;
the instructor sees the grade in the course's grading interface like any other.

A real hub, the course's grading service, the exchange, a learner's own server (own Unix account).
"""

from __future__ import annotations

import re
from html import unescape
from pathlib import Path

import pytest

from tests.integration.test_exchange import Learner
from tests.integration.test_footprint_autograde import (
    assert_one_record_per_graded_submission,
    autograde_records,
)
from tests.integration.test_grading_formgrader import HIDDEN, Instructor, grading_hub
from tests.services import free_port
from tests.services.hub import course, wait_until

pytestmark = pytest.mark.hub

REPO = Path(__file__).resolve().parents[2]
SLUG, PROF, LEARNER, GRADER = "fg-practice", "fg-prof-p", "fg-dan", "fg-pgrader"
QUIZ = "quiz"


@pytest.fixture(scope="module")
def hub():
    practice = course(SLUG, [PROF], [LEARNER], assignments=[{"name": QUIZ, "autograde_on_submit": True}])
    with grading_hub([practice], GRADER, {SLUG: QUIZ}, free_port(), "test_grading_practice") as running:
        yield running


def test_a_submission_is_graded_and_its_feedback_released_within_a_minute(hub):
    prof = Instructor(hub, PROF, SLUG)
    prof.post(f"assignment/{QUIZ}/assign")
    prof.post(f"assignment/{QUIZ}/release")
    dan = Learner(hub, LEARNER)
    dan.fetch_answer_submit(SLUG, QUIZ)

    def feedback_released():
        listed = dan.action("fetch_feedback", SLUG, QUIZ)["value"]
        subs = [s for a in listed if a["status"] == "submitted" for s in a["submissions"]]
        return next((s for s in subs if s["has_local_feedback"]), None)

    sub = wait_until(feedback_released, 60, "the feedback of dan's submission", every=2)
    html = dan.contents(
        f"{SLUG}/{QUIZ}/feedback/{sub['timestamp']}/{QUIZ}.ipynb".replace(".ipynb", ".html")
    ).json()
    text = unescape(re.sub(r"<[^>]+>", "", html["content"]))
    assert "Score: 1.0 / 3.0" in text  # the autograded test; the written answer waits for the instructor
    assert HIDDEN not in html["content"] and "x > 0" not in text
    # the instructor sees it in formgrader like any other submission
    [row] = prof.get(f"submissions/{QUIZ}")
    assert (row["student"], row["score"]) == (LEARNER, 1.0)
    assert "autograded on submit" in hub.log()
    # and its energy record, as for `ailys grade` (footprint/autograde.py)
    assert_one_record_per_graded_submission(autograde_records(hub, SLUG), QUIZ, 1)
