"""Accommodations for real: a hub, the exchange, the course's grading service (formgrader) and two
learners' own servers. An exam of one hour closed a dozen minutes before they submit; ann has a
third more time (tiers-temps: 19 min 48 s), bob has none. Ann's Assignments panel shows her own
deadline and her submission is on time, in the exchange, in nbgrader's gradebook (autograded on
submit) and in `ailys grades export`; bob's is late and his view never shows ann's. Only the
course's instructors may read or set accommodations (the grading service's page, in French or
English, and the exchange's staff routes): a learner and another course's instructor get 403;
bad values get 422 naming the field.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from click.testing import CliRunner

from grading.courses import course_dir, gradebook_url
from hub_config.cli import main
from tests.integration.test_exchange import Learner, exchange_client, user_token
from tests.integration.test_grading_formgrader import Instructor, grading_hub
from tests.services import free_port
from tests.services.hub import course, wait_until

pytestmark = pytest.mark.hub

SLUG, OTHER = "ac-exam", "ac-other"
PROF, PROF_B, ANN, BOB, CAT = "ac-prof", "ac-prof-b", "ac-ann", "ac-bob", "ac-cat"
GRADER, EXAM = "ac-grader", "exam"
EXTRA = dt.timedelta(seconds=1188)  # Ann's 33% of the exam's hour


@pytest.fixture(scope="module")
def due() -> dt.datetime:
    """12 min before the hub starts, not before the test session does (a module collected at a
    CI run's start may run 40 min later): they submit between 12 min and Ann's 19m48s late."""
    return dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=12)


@pytest.fixture(scope="module")
def hub(due):
    opens = due - dt.timedelta(hours=1)
    exam = {"name": EXAM, "opens": opens.isoformat(), "due": due.isoformat(), "autograde_on_submit": True}
    courses = [course(SLUG, [PROF], [ANN, BOB], assignments=[exam]), course(OTHER, [PROF_B], [CAT])]
    with grading_hub(courses, GRADER, {SLUG: EXAM}, free_port(), "test_accommodations") as running:
        yield running


def test_extra_time_moves_the_learners_own_deadline_everywhere_and_only_staff_see_it(hub, due):
    ann_due = due + EXTRA
    prof = Instructor(hub, PROF, SLUG)
    prof.post(f"assignment/{EXAM}/assign")
    prof.post(f"assignment/{EXAM}/release")
    staff = exchange_client(hub, user_token(hub, PROF))
    url = f"courses/{SLUG}/accommodations"

    # bad input: 422 naming the field and the reason; nothing stored
    for body, message in [
        ({"extra_time": "-5m"}, "extra_time: '-5m' is negative"),
        ({"extra_time": "900%"}, "extra_time: 900% is outside 0% to 200%"),
        (
            {"assignment": "tp9", "extension": "1d"},
            "assignment: 'tp9' is not an assignment of course ac-exam",
        ),
        ({"extra_time": 33}, "extra_time: a text such as 33%, 30m or 2d"),
    ]:
        r = staff.put(f"{url}/{ANN}", json=body)
        assert r.status_code in (400, 422) and message in r.json()["error"], (body, r.text)
    r = staff.put(f"{url}/{CAT}", json={"extra_time": "33%"})
    assert r.status_code == 422 and f"learner: '{CAT}' is not a learner of course {SLUG}" in r.json()["error"]
    assert staff.get(url).json() == {"accommodations": {}}

    # the instructor sets it on the grading service's page, in French, without a shell
    page = f"/services/grading-{SLUG}/accommodations"
    shown = prof.client.get(page, params={"lang": "fr"})
    assert shown.status_code == 200 and "Aménagements dans" in shown.text and BOB in shown.text
    assert prof.client.get(page, params={"lang": "en"}).text.count("Accommodations in") == 1
    xsrf = prof.client.cookies.get("_xsrf", path=f"/services/grading-{SLUG}/") or ""
    form = {"_xsrf": xsrf, "learner": ANN, "action": "set", "lang": "fr"}
    refused = prof.client.post(page, data={**form, "extra_time": "-5m"}, params={"lang": "fr"})
    assert refused.status_code == 422 and "Non enregistré :" in refused.text
    assert "extra_time:" in refused.text and "is negative" in refused.text
    saved = prof.client.post(page, data={**form, "extra_time": "33%"}, params={"lang": "fr"})
    assert saved.status_code == 200 and "Enregistré." in saved.text, saved.text[:500]
    assert staff.get(url).json()["accommodations"][ANN]["extra_time"] == "33%"
    for name in (ANN, PROF_B):  # a learner, another course's instructor: the page is not theirs
        assert hub.login(name).get(page, follow_redirects=True).status_code == 403

    # nobody else reads or sets them: a learner of the course, another course's instructor
    for name in (ANN, BOB, PROF_B):
        other = exchange_client(hub, user_token(hub, name))
        assert other.get(url).status_code == 403
        assert other.put(f"{url}/{BOB}", json={"extra_time": "50%"}).status_code == 403
        assert other.delete(f"{url}/{ANN}").status_code == 403
    assert set(staff.get(url).json()["accommodations"]) == {ANN}

    ann, bob = Learner(hub, ANN), Learner(hub, BOB)
    # each one's Assignments panel: their own deadline, and nothing of the other's
    [ann_row] = ann.assignments(SLUG)["value"]
    [bob_row] = bob.assignments(SLUG)["value"]
    assert dt.datetime.fromisoformat(ann_row["due"]) == ann_due
    assert dt.datetime.fromisoformat(bob_row["due"]) == due
    bob_api = exchange_client(hub, user_token(hub, BOB))
    seen_by_bob = json.dumps([bob_row, bob_api.get(f"courses/{SLUG}").json()])
    assert ANN not in seen_by_bob and ann_due.isoformat() not in seen_by_bob and "33%" not in seen_by_bob
    ann_course = exchange_client(hub, user_token(hub, ANN)).get(f"courses/{SLUG}").json()
    assert dt.datetime.fromisoformat(ann_course["due"][EXAM]) == ann_due
    assert dt.datetime.fromisoformat(staff.get(f"courses/{SLUG}").json()["due"][EXAM]) == due

    ann.fetch_answer_submit(SLUG, EXAM)
    bob.fetch_answer_submit(SLUG, EXAM)
    ann_api = exchange_client(hub, user_token(hub, ANN))
    [ann_rec] = ann_api.get(f"courses/{SLUG}/submissions").json()["submissions"]
    [bob_rec] = bob_api.get(f"courses/{SLUG}/submissions").json()["submissions"]
    assert (ann_rec["late"], bob_rec["late"]) == (False, True)
    assert dt.datetime.fromisoformat(ann_rec["due"]) == ann_due
    assert 12 * 60 <= bob_rec["seconds_late"] < 1188  # the test ran within ann's extra time

    # autograded on submit: nbgrader's gradebook has ann's extension (formgrader's deadline for her)
    from nbgrader.api import Gradebook

    def graded() -> bool:
        return len(prof.get(f"submissions/{EXAM}")) == 2 and all(
            r["score"] is not None for r in prof.get(f"submissions/{EXAM}")
        )

    wait_until(graded, 120, "both submissions autograded on submit", every=2)
    with Gradebook(gradebook_url(hub.catalogue, hub.catalogue.course(SLUG)), SLUG) as gb:
        a, b = gb.find_submission(EXAM, ANN), gb.find_submission(EXAM, BOB)
        assert a.extension == dt.timedelta(seconds=1188) and b.extension is None
        assert a.total_seconds_late == 0 and b.total_seconds_late >= 12 * 60

    # the grade export: bob late, ann not
    out = hub.root / "export"
    done = CliRunner().invoke(
        main,
        ["grades", "export", SLUG, "--out", str(out), "--site", str(hub.site_file)],
        catch_exceptions=False,
    )
    assert done.exit_code == 0, done.output
    exported = json.loads((out / f"{SLUG}-grades.json").read_text())
    late = {r["username"]: r["grades"][EXAM]["late"] for r in exported["learners"]}
    assert late == {ANN: False, BOB: True}
    assert "33%" not in (out / f"{SLUG}-grades.csv").read_text()  # Moodle never gets the reason
    assert (course_dir(hub.catalogue, SLUG) / "accommodations.json").stat().st_mode & 0o077 == 0
    assert "33%" not in hub.log()  # health data never in a log
