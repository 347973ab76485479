"""Each course's grading service (nbgrader's formgrader) behind a real hub, the whole loop.

Two courses (fg-alpha, fg-beta) with an assignment ps1 whose source is in the course folder, as
an instructor commits it; three learners with their own servers (own Unix accounts); two
instructors who act through their course's formgrader, reached through the proxy with the
hub's OAuth, as their browser would: generate, release, collect, autograde (sandboxed, as the
grading account), grade by hand, generate and release feedback. Learners act through nbgrader's
Assignments panel API in their own servers.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import pwd
import re
import shutil
import subprocess
import sys
from html import unescape
from pathlib import Path

import httpx
import nbformat
import pytest
from nbgrader.api import Gradebook

from hub_config.appliers.spawner import LEARNER_JUPYTER_CONFIG
from tests.conftest import OUTPUT
from tests.grading_hostile.build import grading_account
from tests.integration.test_exchange import Learner, wait_for_exchange
from tests.services.hub import RunningHub, course, wait_until

pytestmark = pytest.mark.hub

REPO = Path(__file__).resolve().parents[2]
ALPHA, BETA = "fg-alpha", "fg-beta"
GRADER = "fg-grader"
HIDDEN = "hidden-check-7f3a"  # a string only the hidden tests hold
COURSES = [
    course(
        ALPHA,
        ["fg-prof-a"],
        ["fg-ann", "fg-bob"],
        assignments=[{"name": "ps1", "due": "2030-01-01T00:00:00+00:00"}],
        grades={"emails": {"fg-ann": "ann@example.org"}},
    ),
    course(
        BETA,
        ["fg-prof-b"],
        ["fg-cat"],
        assignments=[{"name": "ps1", "due": "2026-01-01T12:00:00+00:00"}],
        grades={"late": {"action": "zero", "grace": "10m"}},
    ),
]


def source_notebook() -> nbformat.NotebookNode:
    """An instructor's source: read-only instructions, an answer, a test with hidden tests, a
    written answer graded by hand."""

    def cell(kind, source, cell_id, **nbgrader):
        c = (nbformat.v4.new_code_cell if kind == "code" else nbformat.v4.new_markdown_cell)(
            source, id=cell_id
        )
        c.metadata.nbgrader = {
            "grade": False,
            "solution": False,
            "locked": False,
            "task": False,
            "schema_version": 3,
            "grade_id": cell_id,
            **nbgrader,
        }
        return c

    nb = nbformat.v4.new_notebook(
        cells=[
            cell("markdown", "Set `x` to the answer. Do not change this cell.", "intro", locked=True),
            cell("code", "### BEGIN SOLUTION\nx = 42\n### END SOLUTION", "answer", solution=True),
            cell(
                "code",
                f"assert x == 42\n### BEGIN HIDDEN TESTS\nassert x > 0, '{HIDDEN}'\n### END HIDDEN TESTS",
                "test",
                grade=True,
                locked=True,
                points=1,
            ),
            cell("markdown", "Why 42? Answer below.", "why-q", locked=True),
            cell("markdown", "YOUR ANSWER HERE", "why", grade=True, solution=True, points=2),
        ]
    )
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


class Instructor:
    """An instructor's browser on their course's formgrader, through the proxy."""

    def __init__(self, hub: RunningHub, name: str, slug: str):
        self.hub, self.name, self.slug = hub, name, slug
        self.client = hub.login(name)
        self.prefix = f"/services/grading-{slug}"
        # The first visit completes the service's OAuth and sets its _xsrf cookie, as in a browser.
        assert self.open().status_code == 200

    def open(self, slug: str | None = None, path: str = "/formgrader") -> httpx.Response:
        return self.client.get(f"/services/grading-{slug or self.slug}{path}", follow_redirects=True)

    def post(self, path: str) -> dict:
        xsrf = self.client.cookies.get("_xsrf", path=f"{self.prefix}/") or ""
        r = self.client.post(
            f"{self.prefix}/formgrader/api/{path}", headers={"X-XSRFToken": xsrf}, timeout=300
        )
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:500]}"
        data = r.json()
        assert data.get("success", True), f"{path}: {data.get('error')}\n{data.get('log')}"
        return data

    def get(self, path: str, **params) -> dict | list:
        r = self.client.get(f"{self.prefix}/formgrader/api/{path}", params=params)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"
        return r.json()

    def put(self, path: str, body: dict) -> dict:
        xsrf = self.client.cookies.get("_xsrf", path=f"{self.prefix}/") or ""
        r = self.client.put(f"{self.prefix}/formgrader/api/{path}", json=body, headers={"X-XSRFToken": xsrf})
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text[:300]}"
        return r.json()


def answer(learner: Learner, slug: str, value: str, tamper: bool = False) -> None:
    path = f"{slug}/ps1/ps1.ipynb"
    nb = learner.contents(path).json()["content"]
    for cell in nb["cells"]:
        grade_id = cell["metadata"].get("nbgrader", {}).get("grade_id")
        if grade_id == "answer":
            cell["source"] = f"x = {value}"
        elif grade_id == "why":
            cell["source"] = "Because it is the answer."
        elif grade_id == "test" and tamper:
            cell["source"] = "assert True  # tests? what tests"
    learner.save_notebook(path, nb)


@pytest.fixture(scope="module")
def hub():
    with grading_hub(
        COURSES, GRADER, {ALPHA: "ps1", BETA: "ps1"}, _free_base_port(), "test_grading_formgrader"
    ) as running:
        yield running


@contextlib.contextmanager
def grading_hub(
    courses: list[dict],
    grader: str,
    sources: dict[str, str],
    base_port: int,
    log_name: str = "",
    site: dict | None = None,
    start_timeout: float = 180,
):
    """A started hub whose courses have their grading service: ``sources`` maps a course to the
    assignment whose source (source_notebook) it commits; ``grader`` is the grading account;
    ``site``: more keys of the site file."""
    shutil.copytree(
        REPO / "spawners" / "jupyter-config" / "learner", LEARNER_JUPYTER_CONFIG, dirs_exist_ok=True
    )
    with grading_account(grader):
        running = RunningHub(
            courses,
            site={"grading": {"user": grader}, "formgraders": {"port": base_port}, **(site or {})},
            start_timeout=start_timeout,
        )
        for slug, assignment in sources.items():
            folder = running.root / "courses" / slug / "source" / assignment
            folder.mkdir(parents=True)
            nbformat.write(source_notebook(), folder / f"{assignment}.ipynb")
        try:
            running.start()
            wait_for_exchange(running)
            for slug in sources:
                wait_for_grading(running, slug)
            yield running
        finally:
            if log_name:
                OUTPUT.mkdir(exist_ok=True)
                with contextlib.suppress(OSError):
                    (OUTPUT / f"{log_name}-hub.log").write_text(running.log())
            running.stop()


def _free_base_port() -> int:
    """Two consecutive free ports (the services of the two courses)."""
    from tests.services import free_ports

    return free_ports(2)


def wait_for_grading(hub: RunningHub, slug: str) -> None:
    """The hub starts services without waiting: wait until the course's formgrader answers."""
    from hub_config.appliers.grading import service_ports

    port = service_ports(hub.catalogue)[slug]

    def answers() -> bool:
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/services/grading-{slug}/formgrader", timeout=2)
            return r.status_code in (302, 401, 403)
        except httpx.HTTPError:
            return False

    wait_until(answers, 120, f"the grading service of {slug}")


@pytest.fixture(scope="module")
def people(hub):
    profs = {ALPHA: Instructor(hub, "fg-prof-a", ALPHA), BETA: Instructor(hub, "fg-prof-b", BETA)}
    learners = {name: Learner(hub, name) for name in ("fg-ann", "fg-bob", "fg-cat")}
    return {"profs": profs, "learners": learners}


# --- who reaches which grading interface ------------------------------------------------------


def test_only_the_courses_instructors_reach_its_formgrader(hub, people):
    prof_a, prof_b = people["profs"][ALPHA], people["profs"][BETA]
    page = prof_a.open()
    assert page.status_code == 200 and "Manage Assignments" in page.text, page.text[:500]
    assert f"/services/grading-{ALPHA}/formgrader/" in str(page.url)
    # formgrader is never framed: JupyterHub's policy is kept, the page opens whole
    assert page.headers["content-security-policy"].startswith("frame-ancestors 'none'")
    assert prof_a.open(BETA).status_code == 403  # the other course's instructor
    assert prof_a.client.get(f"/services/grading-{BETA}/formgrader/api/assignments").status_code in (302, 403)
    assert prof_b.open(ALPHA).status_code == 403
    assert prof_b.open().status_code == 200
    for name in ("fg-ann", "fg-cat"):  # learners, of either course
        client = people["learners"][name].client
        assert client.get(f"/services/grading-{ALPHA}/formgrader", follow_redirects=True).status_code == 403
        assert client.get(f"/services/grading-{BETA}/formgrader", follow_redirects=True).status_code == 403
    # the hub's Services menu lists a course's grading service for its instructors only
    home_a = prof_a.client.get("/hub/home").text
    assert f"grading-{ALPHA}" in home_a and f"grading-{BETA}" not in home_a
    assert "grading-" not in people["learners"]["fg-ann"].client.get("/hub/home").text


def test_the_course_folder_is_closed_to_learners_and_has_the_source(hub):
    root = hub.data / "grading" / ALPHA
    assert (root / "source" / "ps1" / "ps1.ipynb").is_file()
    assert root.stat().st_mode & 0o777 == 0o700
    assert root.stat().st_uid == 0 or root.stat().st_uid == pwd.getpwnam(hub.run_as or "root").pw_uid
    for name in ("fg-ann", "fg-cat"):
        done = subprocess.run(["runuser", "-u", name, "--", "ls", str(root)], capture_output=True, text=True)
        assert done.returncode != 0 and "Permission denied" in done.stderr


def test_the_service_runs_no_code_and_writes_no_file_for_the_web(hub, people):
    prof = people["profs"][ALPHA]
    xsrf = prof.client.cookies.get("_xsrf", path=f"{prof.prefix}/") or ""
    headers = {"X-XSRFToken": xsrf}
    assert prof.client.get(f"{prof.prefix}/api/kernelspecs").json()["kernelspecs"] == {}
    assert (
        prof.client.post(f"{prof.prefix}/api/kernels", json={"name": "python3"}, headers=headers).status_code
        >= 400
    )
    assert prof.client.post(f"{prof.prefix}/api/terminals", headers=headers).status_code == 404
    r = prof.client.put(
        f"{prof.prefix}/api/contents/nbgrader_config.py",
        json={"type": "file", "format": "text", "content": "import os"},
        headers=headers,
    )
    assert r.status_code == 403
    folder = hub.data / "grading" / ALPHA
    assert not (folder / "nbgrader_config.py").exists()  # its settings are data: nbgrader_config.json
    empty = {"type": "file", "format": "text", "content": "{}"}
    r = prof.client.put(f"{prof.prefix}/api/contents/nbgrader_config.json", json=empty, headers=headers)
    assert r.status_code == 403
    assert json.loads((folder / "nbgrader_config.json").read_text())["CourseDirectory"]["course_id"] == ALPHA


# --- the whole loop ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def graded(hub, people):
    """Both courses through the loop, as their instructors click through formgrader."""
    profs, learners = people["profs"], people["learners"]
    ann, bob, cat = learners["fg-ann"], learners["fg-bob"], learners["fg-cat"]
    for prof in profs.values():
        prof.post("assignment/ps1/assign")  # generate from source/ (courses/<slug>/source/)
        prof.post("assignment/ps1/release")  # to the exchange
    for learner, slug, value, tamper in (
        (ann, ALPHA, "42", False),
        (bob, ALPHA, "41", True),
        (cat, BETA, "42", False),
    ):
        listed = learner.assignments(slug)
        assert [(a["assignment_id"], a["status"]) for a in listed["value"]] == [("ps1", "released")]
        learner.action("fetch", slug)
        answer(learner, slug, value, tamper=tamper)
        assert learner.action("submit", slug)["success"]
    for slug, students in ((ALPHA, ["fg-ann", "fg-bob"]), (BETA, ["fg-cat"])):
        prof = profs[slug]
        prof.post("assignment/ps1/collect")
        for student in students:
            done = prof.post(f"submission/ps1/{student}/autograde")
            assert f"{student} ps1: graded" in done["log"], done["log"]
        for nb in prof.get("submitted_notebooks/ps1/ps1"):  # grade the written answer by hand
            [why] = [g for g in prof.get("grades", submission_id=nb["id"]) if g["name"] == "why"]
            prof.put(f"grade/{why['id']}", {"manual_score": 2 if nb["student"] != "fg-bob" else 1})
        prof.post("assignment/ps1/generate_feedback")
        prof.post("assignment/ps1/release_feedback")
    return {"profs": profs, "learners": learners}


def test_the_loop_scores_as_graded_and_learners_read_their_feedback(hub, graded):
    profs, learners = graded["profs"], graded["learners"]
    scores = {s["student"]: (s["score"], s["max_score"]) for s in profs[ALPHA].get("submissions/ps1")}
    assert scores == {"fg-ann": (3.0, 3.0), "fg-bob": (1.0, 3.0)}  # bob's x = 41 fails the original test
    assert {s["student"]: s["score"] for s in profs[BETA].get("submissions/ps1")} == {"fg-cat": 3.0}
    for name, slug, score in (
        ("fg-ann", ALPHA, "3.0 / 3.0"),
        ("fg-bob", ALPHA, "1.0 / 3.0"),
        ("fg-cat", BETA, "3.0 / 3.0"),
    ):
        learner = learners[name]
        back = learner.action("fetch_feedback", slug)
        [mine] = [a for a in back["value"] if a["status"] == "submitted"]
        sub = mine["submissions"][-1]
        assert sub["has_local_feedback"], sub
        html = learner.contents(f"{slug}/ps1/feedback/{sub['timestamp']}/ps1.html").json()["content"]
        text = unescape(re.sub(r"<[^>]+>", "", html))  # what the learner reads
        assert f"Score: {score}" in text
        # the feedback never shows hidden tests
        assert HIDDEN not in html and "BEGIN HIDDEN TESTS" not in text and "x > 0" not in text
        assert "assert x == 42" in text  # the visible test is there


def test_each_autograde_from_formgrader_leaves_an_energy_record(hub, graded):
    from tests.integration.test_footprint_autograde import (
        assert_one_record_per_graded_submission,
        autograde_records,
    )

    for slug, students in ((ALPHA, 2), (BETA, 1)):  # as `ailys grade`'s (footprint/autograde.py)
        assert_one_record_per_graded_submission(autograde_records(hub, slug), "ps1", students)


def test_a_changed_test_cell_is_flagged_and_the_original_graded(hub, graded):
    prof = graded["profs"][ALPHA]
    notebooks = prof.get("submitted_notebooks/ps1/ps1")
    flags = {nb["student"]: nb["flagged"] for nb in notebooks}
    assert flags == {"fg-ann": False, "fg-bob": True}  # formgrader shows the flag in its lists
    # the manual grading page of bob's notebook: his answer and the original test
    [bob] = [nb for nb in notebooks if nb["student"] == "fg-bob"]
    page = prof.client.get(f"{prof.prefix}/formgrader/submissions/{bob['id']}", follow_redirects=True)
    assert page.status_code == 200
    text = unescape(re.sub(r"<[^>]+>", "", page.text))
    assert "x = 41" in text and "assert x == 42" in text and "what tests" not in text
    autograded = (hub.data / "grading" / ALPHA / "autograded" / "fg-bob" / "ps1" / "ps1.ipynb").read_text()
    assert "assert True  # tests? what tests" not in autograded and "assert x == 42" in autograded
    # the learner's feedback says why, too
    html = (hub.data / "grading" / ALPHA / "feedback" / "fg-bob" / "ps1" / "ps1.html").read_text()
    assert "read-only or test cells edited" in html


def test_the_export_matches_the_gradebook_with_late_and_changed_flags(hub, graded, tmp_path):
    ailys = str(Path(sys.executable).parent / "ailys")
    for slug in (ALPHA, BETA):
        done = subprocess.run(
            [ailys, "grades", "export", slug, "--out", str(tmp_path), "--site", str(hub.site_file)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
    rows = list(csv.DictReader(io.StringIO((tmp_path / f"{ALPHA}-grades.csv").read_text())))
    assert list(rows[0]) == ["Username", "Email address", "ps1", "Total", "Notes"]
    db = f"sqlite:///{hub.data / 'grading' / ALPHA / 'gradebook.db'}"
    with Gradebook(db, ALPHA) as gb:
        expected = {s: gb.find_submission("ps1", s).score for s in ("fg-ann", "fg-bob")}
    assert {r["Username"]: float(r["ps1"]) for r in rows} == expected == {"fg-ann": 3.0, "fg-bob": 1.0}
    assert {r["Username"]: float(r["Total"]) for r in rows} == expected
    ann, bob = sorted(rows, key=lambda r: r["Username"])
    assert ann["Email address"] == "ann@example.org" and bob["Email address"] == ""
    assert ann["Notes"] == "" and "ps1: read-only or test cells changed (ps1: test: edited)" in bob["Notes"]
    data = json.loads((tmp_path / f"{ALPHA}-grades.json").read_text())
    assert data["max_total"] == 3.0 and [a["name"] for a in data["assignments"]] == ["ps1"]
    [bob_json] = [r for r in data["learners"] if r["username"] == "fg-bob"]
    assert (
        bob_json["grades"]["ps1"]["tampered"] == ["ps1: test: edited"]
        and bob_json["grades"]["ps1"]["flagged"]
    )
    # fg-beta's deadline has passed (late policy: zero after a 10 min grace)
    [cat] = list(csv.DictReader(io.StringIO((tmp_path / f"{BETA}-grades.csv").read_text())))
    assert (
        cat["ps1"] == "0"
        and cat["Total"] == "0"
        and "ps1: late by" in cat["Notes"]
        and "counted 0" in cat["Notes"]
    )
    cat_json = json.loads((tmp_path / f"{BETA}-grades.json").read_text())["learners"][0]["grades"]["ps1"]
    assert cat_json["late"] and cat_json["zeroed_late"] and cat_json["late_by_seconds"] > 600


def test_an_untouched_submission_gets_no_tampering_note(hub, graded):
    html = (hub.data / "grading" / ALPHA / "feedback" / "fg-ann" / "ps1" / "ps1.html").read_text()
    assert "read-only or test cells edited" not in html


def test_a_learners_own_server_serves_no_formgrader(hub, people):
    ann = people["learners"]["fg-ann"]
    r = ann.client.get("/user/fg-ann/formgrader", follow_redirects=True)
    assert r.status_code == 404, f"{r.status_code}: nbgrader's formgrader is served in learners' servers"
