"""The assignment exchange for real: a hub, its exchange service, learners' servers as their own
Unix accounts, and nbgrader's own commands and server extensions on both sides.

Two courses (exa-algo, exa-stats) both have an assignment ps1; three learners, two instructors.
Learners act through nbgrader's assignment_list server extension in their own servers (what
JupyterLab's Assignments panel calls); instructors run nbgrader's commands with a token of
theirs, as they would in their server's terminal or in a grading service.
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import json
import os
import secrets
import select
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import nbformat
import psutil
import pytest

from hub_config.appliers.exchange import ACCESS
from hub_config.appliers.spawner import LEARNER_JUPYTER_CONFIG
from tests.conftest import OUTPUT
from tests.services.hub import RunningHub, course, hub_xsrf, server_xsrf, wait_until

pytestmark = pytest.mark.hub

REPO = Path(__file__).resolve().parents[2]
GRADING_TOKEN = secrets.token_hex(32)
NBGRADER = str(Path(sys.executable).parent / "nbgrader")
ALGO, STATS = "exa-algo", "exa-stats"
COURSES = [
    course(
        ALGO,
        ["exa-prof-a"],
        ["exa-ann", "exa-bob"],
        assignments=[{"name": "ps1", "due": "2030-01-01T00:00:00+00:00"}],
        submission={"max_file_size": "64K", "max_total_size": "96K"},
    ),
    course(
        STATS, ["exa-prof-b"], ["exa-cat"], assignments=[{"name": "ps1", "due": "2026-01-01T12:00:00+00:00"}]
    ),
]


def source_notebook() -> nbformat.NotebookNode:
    """One answer cell and one hidden-free test cell, as an instructor writes them for nbgrader."""
    answer = nbformat.v4.new_code_cell("### BEGIN SOLUTION\nx = 42\n### END SOLUTION", id="answer")
    answer.metadata.nbgrader = {
        "grade": False,
        "solution": True,
        "locked": False,
        "grade_id": "answer",
        "schema_version": 3,
        "task": False,
    }
    test = nbformat.v4.new_code_cell("assert x == 42", id="test")
    test.metadata.nbgrader = {
        "grade": True,
        "solution": False,
        "locked": True,
        "points": 1,
        "grade_id": "test",
        "schema_version": 3,
        "task": False,
    }
    nb = nbformat.v4.new_notebook(cells=[answer, test])
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    return nb


class Instructor:
    """An instructor's course folder and their token: nbgrader's commands, as from their terminal."""

    def __init__(self, hub: RunningHub, name: str, slug: str, root: Path):
        self.hub, self.name, self.slug, self.root = hub, name, slug, root
        self.token = user_token(hub, name)
        (root / "source" / "ps1").mkdir(parents=True)
        nbformat.write(source_notebook(), root / "source" / "ps1" / "ps1.ipynb")
        (root / "nbgrader_config.py").write_text(
            f"c = get_config()\nc.CourseDirectory.course_id = {slug!r}\n"
        )

    def nbgrader(
        self, *args: str, course: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess:
        env = {
            **os.environ,
            "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",  # nbgrader runs alembic
            "JUPYTERHUB_API_TOKEN": self.token,
            "AILYS_EXCHANGE_URL": exchange_url(self.hub),
            # the same nbgrader config as in every server the hub starts
            "JUPYTER_CONFIG_PATH": str(REPO / "spawners" / "jupyter-config" / "learner"),
        }
        extra = [f"--course={course}"] if course else []
        done = subprocess.run(
            [NBGRADER, *args, *extra],
            check=False,
            cwd=self.root,
            env=env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        if check and done.returncode:
            raise AssertionError(f"nbgrader {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
        return done

    def api(self) -> httpx.Client:
        return exchange_client(self.hub, self.token)


def wait_for_exchange(hub: RunningHub) -> None:
    """The hub starts its services without waiting for them: wait until the exchange answers."""

    def answers() -> bool:
        try:
            return httpx.get(exchange_url(hub) + "api/courses", timeout=2).status_code == 401
        except httpx.HTTPError:
            return False

    wait_until(answers, 60, "the exchange service to answer")


def exchange_url(hub: RunningHub) -> str:
    return f"http://127.0.0.1:{hub.catalogue.site.exchange.port}/services/exchange/"


def exchange_client(hub: RunningHub, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=exchange_url(hub) + "api/", headers={"Authorization": f"token {token}"}, timeout=30
    )


def user_token(hub: RunningHub, name: str, scopes: tuple[str, ...] = (ACCESS,)) -> str:
    """A token of ``name``'s that may reach the exchange only, made as they would on /hub/token."""
    client = hub.login(name)
    r = client.post(
        f"/hub/api/users/{name}/tokens",
        json={"scopes": list(scopes), "note": "exchange test"},
        headers=hub_xsrf(client),
    )
    assert r.status_code == 201, r.text
    return r.json()["token"]


class Learner:
    """A learner's own server, reached as JupyterLab's Assignments panel reaches it."""

    def __init__(self, hub: RunningHub, name: str):
        self.hub, self.name = hub, name
        self.client = hub.login(name)
        hub.spawn(self.client, name)
        self.headers = server_xsrf(self.client, name)

    def assignments(self, course_id: str) -> dict:
        r = self.client.get(f"/user/{self.name}/assignments", params={"course_id": course_id})
        assert r.status_code == 200, r.text
        return r.json()

    def action(self, action: str, course_id: str, assignment_id: str = "ps1") -> dict:
        r = self.client.post(
            f"/user/{self.name}/assignments/{action}",
            json={"course_id": course_id, "assignment_id": assignment_id},
            headers=self.headers,
        )
        assert r.status_code == 200, r.text
        return r.json()

    def contents(self, path: str) -> httpx.Response:
        return self.client.get(f"/user/{self.name}/api/contents/{path}")

    def save_notebook(self, path: str, nb: dict) -> None:
        r = self.client.put(
            f"/user/{self.name}/api/contents/{path}",
            json={"type": "notebook", "format": "json", "content": nb},
            headers=self.headers,
        )
        assert r.status_code in (200, 201), r.text

    def save_text(self, path: str, text: str) -> None:
        r = self.client.put(
            f"/user/{self.name}/api/contents/{path}",
            json={"type": "file", "format": "text", "content": text},
            headers=self.headers,
        )
        assert r.status_code in (200, 201), r.text

    def answer(self, course_id: str, value: int) -> None:
        """Edit the fetched notebook: write the answer where nbgrader left 'YOUR CODE HERE'."""
        path = f"{course_id}/ps1/ps1.ipynb"
        nb = self.contents(path).json()["content"]
        [cell] = [
            c for c in nb["cells"] if "NotImplementedError" in c["source"] or c["source"].startswith("x =")
        ]
        cell["source"] = f"x = {value}"
        self.save_notebook(path, nb)

    def fetch_answer_submit(self, course_id: str, assignment: str, source: str = "x = 42") -> None:
        """Fetch ``assignment``, then ``answer_and_submit``."""
        self.action("fetch", course_id, assignment)
        self.answer_and_submit(course_id, assignment, source)

    def answer_and_submit(self, course_id: str, assignment: str, source: str) -> None:
        """Write ``source`` in the fetched notebook's cell graded as 'answer', and submit it."""
        path = f"{course_id}/{assignment}/{assignment}.ipynb"
        nb = self.contents(path).json()["content"]
        for cell in nb["cells"]:
            if cell["metadata"].get("nbgrader", {}).get("grade_id") == "answer":
                cell["source"] = source
        self.save_notebook(path, nb)
        assert self.action("submit", course_id, assignment)["success"]

    def has_submitted(self, course_id: str) -> None:
        """For a test run on its own: fetch, answer and submit once, unless done already."""
        if self.contents(f"{course_id}/ps1/ps1.ipynb").status_code != 200:
            self.action("fetch", course_id)
            self.answer(course_id, 42)
            assert self.action("submit", course_id)["success"]

    def server_token(self) -> str:
        """The $JUPYTERHUB_API_TOKEN the hub gave this learner's server (its process environment)."""
        for p in self.hub.learner_processes():
            try:
                if p.username() == self.name and "jupyterhub-singleuser" in " ".join(p.cmdline()):
                    return p.environ()["JUPYTERHUB_API_TOKEN"]
            except (psutil.Error, KeyError):
                continue
        raise AssertionError(f"no server process of {self.name}")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    # What `make` does for learners' servers (the Makefile copies the folder into the venv).
    shutil.copytree(
        REPO / "spawners" / "jupyter-config" / "learner", LEARNER_JUPYTER_CONFIG, dirs_exist_ok=True
    )
    running = RunningHub(COURSES)
    # The grading service of exa-algo (hub_config/appliers/grading.py), with a token the test knows;
    # a stand-in with the same name and exchange scope where that applier is not there.
    (running.data / "jupyterhub_config.d" / "61-grading-service.py").write_text(
        f"name = 'grading-{ALGO}'\n"
        "mine = [s for s in c.JupyterHub.services if s['name'] == name]\n"
        f"for s in mine:\n    s['api_token'] = {GRADING_TOKEN!r}\n"
        "if not mine:\n"
        f"    c.JupyterHub.services.append({{'name': name, 'api_token': {GRADING_TOKEN!r}}})\n"
        f"    c.JupyterHub.load_roles.append({{'name': name, 'services': [name], 'scopes': [{ACCESS!r}]}})\n"
    )
    running.start()
    wait_for_exchange(running)
    yield running
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "test_exchange-hub.log").write_text(running.log())  # the exchange's log lines are in it
    running.stop()


@pytest.fixture(scope="module")
def world(hub, tmp_path_factory):
    """Both courses' ps1 generated and released by their instructors; the learners' servers up."""
    profs = {
        ALGO: Instructor(hub, "exa-prof-a", ALGO, tmp_path_factory.mktemp("algo")),
        STATS: Instructor(hub, "exa-prof-b", STATS, tmp_path_factory.mktemp("stats")),
    }
    for prof in profs.values():
        prof.nbgrader("generate_assignment", "ps1", "--force")
        prof.nbgrader("release_assignment", "ps1", "--force")
    learners = {name: Learner(hub, name) for name in ("exa-ann", "exa-bob", "exa-cat")}
    return {"profs": profs, "learners": learners}


def test_the_whole_loop_release_fetch_submit_twice_collect_feedback(hub, world):
    profs, learners = world["profs"], world["learners"]
    ann, bob, cat = learners["exa-ann"], learners["exa-bob"], learners["exa-cat"]

    # The Assignments panel lists the released assignment of ann's course, and fetches it
    listed = ann.assignments(ALGO)
    assert listed["success"], listed
    assert [(a["course_id"], a["assignment_id"], a["status"]) for a in listed["value"]] == [
        (ALGO, "ps1", "released")
    ]
    fetched = ann.action("fetch", ALGO)
    assert [(a["assignment_id"], a["status"], a["path"]) for a in fetched["value"]] == [
        ("ps1", "fetched", f"{ALGO}/ps1")
    ]
    nb = ann.contents(f"{ALGO}/ps1/ps1.ipynb").json()["content"]
    assert "NotImplementedError" in nb["cells"][0]["source"]  # nbgrader's release version, no solution
    assert "BEGIN SOLUTION" not in json.dumps(nb)

    # Two submissions, both kept, with distinct timestamps
    ann.answer(ALGO, 41)
    first = ann.action("submit", ALGO)
    assert first["success"], first.get("value")
    ann.answer(ALGO, 42)
    second = ann.action("submit", ALGO)
    assert second["success"], second.get("value")
    [mine] = [a for a in second["value"] if a["status"] == "submitted"]
    stamps = [s["timestamp"] for s in mine["submissions"]]
    assert len(stamps) == 2 and stamps[0] < stamps[1] and all(s.endswith(" UTC") for s in stamps)
    for learner, slug, value in ((bob, ALGO, 42), (cat, STATS, 0)):
        learner.action("fetch", slug)
        learner.answer(slug, value)
        assert learner.action("submit", slug)["success"]

    # The instructor sees every submission with its timestamp; collect takes the latest
    subs = (
        profs[ALGO]
        .api()
        .get("courses/exa-algo/submissions", params={"assignment": "ps1"})
        .json()["submissions"]
    )
    assert [(s["student_id"], s["timestamp"]) for s in subs if s["student_id"] == "exa-ann"] == [
        ("exa-ann", t) for t in stamps
    ]
    assert {s["student_id"] for s in subs} == {"exa-ann", "exa-bob"}  # nothing of exa-stats
    assert not any(s["late"] for s in subs)
    [late] = profs[STATS].api().get("courses/exa-stats/submissions").json()["submissions"]
    assert late["late"] is True and late["due"] == "2026-01-01T12:00:00+00:00"  # for the grade export
    older = profs[ALGO].api().get(f"courses/exa-algo/submissions/ps1/exa-ann/{subs[0]['id']}").json()
    assert "x = 41" in json.dumps(older["files"]) or "x = 41" in _decoded(older["files"]["ps1.ipynb"])

    prof = profs[ALGO]
    prof.nbgrader("collect", "ps1", "--ExchangeCollect.all_submissions=True")
    history = sorted((prof.root / "submission_history" / "exa-ann" / "ps1").iterdir())
    assert [(h / "timestamp.txt").read_text() for h in history] == stamps  # every one, with its timestamp
    assert "x = 41" in (history[0] / "ps1.ipynb").read_text()
    submitted = prof.root / "submitted" / "exa-ann" / "ps1"
    assert (submitted / "timestamp.txt").read_text() == stamps[1]
    assert "x = 42" in (submitted / "ps1.ipynb").read_text()
    assert (prof.root / "submitted" / "exa-bob" / "ps1" / "ps1.ipynb").is_file()
    assert not (prof.root / "submitted" / "exa-cat").exists()

    # autograde and feedback with plain nbgrader, then released through the exchange
    prof.nbgrader("autograde", "ps1", "--create")
    prof.nbgrader("generate_feedback", "ps1")
    prof.nbgrader("release_feedback", "ps1")

    back = ann.action("fetch_feedback", ALGO)
    [mine] = [a for a in back["value"] if a["status"] == "submitted"]
    newest = mine["submissions"][-1]
    assert newest["has_exchange_feedback"] and newest["has_local_feedback"] and not newest["feedback_updated"]
    assert not mine["submissions"][0]["has_exchange_feedback"]  # feedback is for the collected one
    html = ann.contents(f"{ALGO}/ps1/feedback/{stamps[1]}/ps1.html")
    assert html.status_code == 200
    assert "Score: 1.0 / 1.0" in html.json()["content"]  # graded on the latest submission (x = 42)

    # every submission is still there
    again = (
        prof.api()
        .get("courses/exa-algo/submissions", params={"assignment": "ps1", "student": "exa-ann"})
        .json()
    )
    assert [s["timestamp"] for s in again["submissions"]] == stamps


def _decoded(b64: str) -> str:
    import base64

    return base64.b64decode(b64).decode()


def test_a_learner_reaches_nothing_of_another_course_or_learner_through_the_api(hub, world):
    for name in ("exa-ann", "exa-bob"):
        world["learners"][name].has_submitted(ALGO)
    ann = exchange_client(hub, world["learners"]["exa-ann"].server_token())
    assert ann.get("courses").json()["courses"] == [{"course_id": ALGO, "role": "learner"}]
    for path in (
        "courses/exa-stats/assignments",
        "courses/exa-stats/assignments/ps1",
        "courses/exa-stats/submissions",
        "courses/exa-stats/feedback",
    ):
        r = ann.get(path)
        assert r.status_code == 403, (path, r.text)
        assert r.json()["error"] == "exa-ann is neither a learner nor an instructor of course 'exa-stats'"
    r = ann.post("courses/exa-stats/assignments/ps1/submissions", json={"files": {}})
    assert r.status_code == 403
    # bob's submissions and feedback, in her own course
    own = ann.get("courses/exa-algo/submissions").json()["submissions"]
    assert own and {s["student_id"] for s in own} == {"exa-ann"}
    r = ann.get("courses/exa-algo/submissions", params={"student": "exa-bob"})
    assert r.status_code == 403 and r.json()["error"] == "exa-ann may see only their own submissions"
    bob_id = (
        world["profs"][ALGO]
        .api()
        .get("courses/exa-algo/submissions", params={"student": "exa-bob"})
        .json()["submissions"][0]["id"]
    )
    for path in (
        f"courses/exa-algo/submissions/ps1/exa-bob/{bob_id}",
        f"courses/exa-algo/feedback/ps1/exa-bob/{bob_id}",
    ):
        assert ann.get(path).status_code == 403
    assert ann.get("courses/exa-algo/feedback", params={"student": "exa-bob"}).status_code == 403
    # nor an instructor's part in her own course
    r = ann.put("courses/exa-algo/assignments/ps2", json={"files": {}})
    assert (
        r.status_code == 403 and r.json()["error"] == "only instructors of 'exa-algo' may release assignments"
    )
    assert ann.delete("courses/exa-algo/assignments/ps1").status_code == 403
    assert ann.get("courses/exa-nope/assignments").status_code == 404
    # and no token gets nothing; a path the API does not have gets a JSON 404
    r = httpx.get(exchange_url(hub) + "api/courses")
    assert r.status_code == 401 and r.json()["error"] == "no JupyterHub API token in the Authorization header"
    assert ann.get("nothing/here").json()["status"] == 404
    # a token of hers made for something else does not reach the exchange
    other = exchange_client(hub, user_token(hub, "exa-ann", scopes=("read:users:activity!user",)))
    r = other.get("courses")
    assert (
        r.status_code == 403
        and r.json()["error"] == "this token lacks the scope access:services!service=exchange"
    )


def test_the_server_token_reaches_the_exchange_and_not_more(hub, world):
    token = world["learners"]["exa-ann"].server_token()
    api = httpx.Client(base_url=f"{hub.url}/hub/api/", headers={"Authorization": f"token {token}"})
    # the `server` role's scopes, the exchange, and JupyterHub's identify scopes (own name and groups)
    assert set(api.get("user").json()["scopes"]) == {
        "access:servers!server=exa-ann/",
        "users:activity!user=exa-ann",
        "access:services!service=exchange",
        "read:users:name!user=exa-ann",
        "read:users:groups!user=exa-ann",
        "read:users:activity!user=exa-ann",
    }
    assert api.get("users").status_code == 403
    assert api.post("users/exa-ann/tokens", json={}).status_code == 403
    assert api.delete("users/exa-ann/server").status_code == 403
    assert api.get("users/exa-bob").status_code in (403, 404)


def test_the_learners_panel_shows_only_their_own_courses(hub, world):
    ann = world["learners"]["exa-ann"]
    r = ann.client.get("/user/exa-ann/courses")
    assert r.json() == {"success": True, "value": [ALGO]}
    other = ann.assignments(STATS)
    assert not other["success"] or other["value"] == []
    assert "exa-stats" not in json.dumps(other.get("value"))


def test_the_exchange_folder_is_closed_to_learners_accounts(hub, world):
    for name in ("exa-ann", "exa-bob"):
        world["learners"][name].has_submitted(ALGO)
    root = hub.data / "exchange"
    ann_sub = next((root / ALGO / "submissions" / "ps1" / "exa-ann").glob("*/files/ps1.ipynb"))
    bob_sub = next((root / ALGO / "submissions" / "ps1" / "exa-bob").glob("*/files/ps1.ipynb"))
    assert oct(root.stat().st_mode & 0o777) == "0o700"
    probe = (
        "import os, sys\n"
        "for path in sys.argv[1:]:\n"
        "    try:\n"
        "        os.listdir(path) if os.path.isdir(path) else open(path).read()\n"
        "        print(path, 'READ')\n"
        "    except PermissionError:\n"
        "        print(path, 'denied')\n"
    )
    bob_feedback = root / ALGO / "feedback" / "ps1" / "exa-bob"  # after the loop test; denied either way
    paths = [
        str(root),
        str(root / ALGO),
        str(ann_sub),
        str(bob_sub),
        str(bob_feedback),
        str(root / STATS / "released" / "ps1"),
    ]
    if os.geteuid() != 0:
        pytest.skip("SKIPPED, NOT TESTED: learners have Unix accounts of their own only under a root hub")
    out = subprocess.run(
        [sys.executable, "-c", probe, *paths],
        check=False,
        user="exa-ann",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.stdout.split() == [w for p in paths for w in (p, "denied")], out.stdout + out.stderr


def test_an_instructor_gets_403_on_another_course(hub, world):
    prof_a = world["profs"][ALGO]
    api = prof_a.api()
    assert api.get("courses").json()["courses"] == [{"course_id": ALGO, "role": "staff"}]
    for method, path in (
        ("GET", "courses/exa-stats/submissions"),
        ("PUT", "courses/exa-stats/assignments/ps1"),
        ("DELETE", "courses/exa-stats/assignments/ps1"),
        ("PUT", "courses/exa-stats/feedback/ps1/exa-cat"),
    ):
        r = api.request(method, path, json={"files": {}, "timestamp": "x"})
        assert r.status_code == 403, (method, path, r.text)
        assert r.json()["error"] == "exa-prof-a is neither a learner nor an instructor of course 'exa-stats'"
    done = prof_a.nbgrader("collect", "ps1", course=STATS, check=False)
    assert done.returncode != 0
    assert (
        "exa-prof-a is neither a learner nor an instructor of course 'exa-stats'" in done.stdout + done.stderr
    )
    # an instructor cannot submit in their own course (submissions are learners')
    r = api.post("courses/exa-algo/assignments/ps1/submissions", json={"files": {}})
    assert r.status_code == 403 and r.json()["error"] == "only learners of 'exa-algo' may submit"


@pytest.mark.parametrize(
    "damage, message",
    [
        ("invalid-json", "ps1.ipynb: not a valid notebook: invalid JSON (Expecting value: line 1 column 12"),
        ("missing", "ps1.ipynb: missing (a notebook of the assignment"),
        ("file-too-big", "big.csv: 70.0K, over the course's limit of 64.0K a file"),
        ("total-too-big", "over the course's limit of 96.0K"),
    ],
)
def test_a_bad_submission_gets_a_message_and_loses_nothing(hub, world, damage, message):
    bob = world["learners"]["exa-bob"]
    prof = world["profs"][ALGO].api()
    bob.has_submitted(ALGO)
    before = prof.get("courses/exa-algo/submissions", params={"student": "exa-bob"}).json()["submissions"]
    work = bob.hub.data / "homes" / "exa-bob" / ALGO / "ps1"
    saved = (work / "ps1.ipynb").read_text()
    try:
        if damage == "invalid-json":
            bob.save_text(f"{ALGO}/ps1/ps1.ipynb", '{"cells": [}' + saved)
        elif damage == "missing":
            assert (
                bob.client.delete(
                    f"/user/exa-bob/api/contents/{ALGO}/ps1/ps1.ipynb", headers=bob.headers
                ).status_code
                == 204
            )
        elif damage == "file-too-big":
            bob.save_text(f"{ALGO}/ps1/big.csv", "1," * 35 * 1024)
        else:
            for i in range(3):
                bob.save_text(f"{ALGO}/ps1/part{i}.csv", "1," * 20 * 1024)
        out = bob.action("submit", ALGO)
        assert out["success"] is False
        assert message in out["value"], out["value"][-1500:]
        assert "earlier submissions are kept" in out["value"] or "nothing was stored" in out["value"]
    finally:
        bob.save_text(f"{ALGO}/ps1/ps1.ipynb", saved)
        for extra in ("big.csv", "part0.csv", "part1.csv", "part2.csv"):
            bob.client.delete(f"/user/exa-bob/api/contents/{ALGO}/ps1/{extra}", headers=bob.headers)
    after = prof.get("courses/exa-algo/submissions", params={"student": "exa-bob"}).json()["submissions"]
    assert after == before  # nothing stored, nothing lost
    for sub in before:
        files = prof.get(f"courses/exa-algo/submissions/ps1/exa-bob/{sub['id']}").json()["files"]
        assert "x = 42" in _decoded(files["ps1.ipynb"])


def test_unrelease_hides_an_assignment_from_learners_and_keeps_submissions(hub, world):
    world["learners"]["exa-cat"].has_submitted(STATS)
    prof = world["profs"][STATS]
    prof.nbgrader("list", "--remove", "ps1")
    cat = world["learners"]["exa-cat"]
    listed = cat.assignments(STATS)
    assert [a["status"] for a in listed["value"]] == ["submitted"]  # no longer 'released', still submitted
    assert len(prof.api().get("courses/exa-stats/submissions").json()["submissions"]) == 1
    prof.nbgrader("release_assignment", "ps1", "--force")
    assert {a["status"] for a in cat.assignments(STATS)["value"]} == {"fetched", "submitted"}


def test_a_courses_grading_service_is_its_staff_and_nothing_more(hub, world):
    service = exchange_client(hub, GRADING_TOKEN)
    assert service.get("courses").json()["courses"] == [{"course_id": ALGO, "role": "staff"}]
    assert service.get(f"courses/{ALGO}/submissions").status_code == 200
    r = service.get(f"courses/{STATS}/submissions")
    assert r.status_code == 403
    assert r.json()["error"] == f"grading-{ALGO} is neither a learner nor an instructor of course '{STATS}'"


def notebook_of_size(size: int, tag: str) -> bytes:
    """A learner's long notebook: many cells, as the exchange checks them one by one."""
    source = "y = 1\n" * 60
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [], "source": source}
    cells = [{**cell, "id": f"{tag}-{i}"} for i in range(size // (len(source) + 110))]
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


def read_all_of(port: int, client_port: int) -> bool:
    """Whether the server at ``port`` has read everything its client at ``client_port`` sent: nothing
    left in the client's send queue nor in the server's receive queue (/proc/net/tcp, in hex)."""
    queues = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, remote, _, tx_rx = line.split()[1:5]
        ends = (int(local.split(":")[1], 16), int(remote.split(":")[1], 16))
        queues[ends] = [int(q, 16) for q in tx_rx.split(":")]
    return queues.get((client_port, port), [1])[0] == 0 and queues.get((port, client_port), [0, 1])[1] == 0


def test_a_large_submission_does_not_hold_up_another_learners_request(hub, world):
    """While the exchange stores exa-cat's 18 MB submission (exa-stats keeps the default limits: 5 MB
    a file, 20 MB in all), exa-ann's listing of her assignments is answered. Last of the module: it
    adds a submission to exa-stats, which an earlier test counts."""
    cat_token = world["learners"]["exa-cat"].server_token()
    ann = exchange_client(hub, world["learners"]["exa-ann"].server_token())
    files = {"ps1.ipynb": nbformat.writes(source_notebook()).encode()}
    for i in range(2):
        files[f"long{i}.ipynb"] = notebook_of_size(4_400_000, f"long{i}")
        files[f"data{i}.csv"] = b"1.0," * 1_100_000
    assert 17 * 1024**2 < sum(map(len, files.values())) < 20 * 1024**2
    body = json.dumps({"files": {path: base64.b64encode(data).decode() for path, data in files.items()}})
    # Both tokens and their groups already known to the exchange: neither request waits for the hub.
    assert exchange_client(hub, cat_token).get("courses").status_code == 200
    assert ann.get(f"courses/{ALGO}/assignments").status_code == 200

    port = hub.catalogue.site.exchange.port
    large = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    headers = {"Authorization": f"token {cat_token}", "Content-Type": "application/json"}
    submit = f"/services/exchange/api/courses/{STATS}/assignments/ps1/submissions"
    large.request("POST", submit, body=body.encode(), headers=headers)
    # Once the exchange holds the whole upload it is storing it: without a thread of its own, the
    # listing below would wait for it to be stored, and answer after it.
    client_port = large.sock.getsockname()[1]
    wait_until(lambda: read_all_of(port, client_port), 60, "the exchange to read the upload", every=0.005)
    small = ann.get(f"courses/{ALGO}/assignments")
    assert small.status_code == 200 and [a["assignment_id"] for a in small.json()["assignments"]] == ["ps1"]
    assert not select.select([large.sock], [], [], 0)[0], "the small request was answered after the large one"

    stored = large.getresponse()
    meta = json.loads(stored.read())
    assert stored.status == 201, meta
    assert {p: f["sha256"] for p, f in meta["files"].items()} == {
        p: hashlib.sha256(d).hexdigest() for p, d in files.items()
    }
    listed = exchange_client(hub, cat_token).get(f"courses/{STATS}/submissions").json()["submissions"]
    assert meta["id"] in [s["id"] for s in listed]

    # Collecting it: exa-prof-b's answer is read and encoded (27 MB of base64) off the loop too, so
    # exa-ann's listing, sent once the exchange holds the collect request, is answered first.
    collect = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    prof = {"Authorization": f"token {world['profs'][STATS].token}"}
    collect.request(
        "GET", f"/services/exchange/api/courses/{STATS}/submissions/ps1/exa-cat/{meta['id']}", headers=prof
    )
    client_port = collect.sock.getsockname()[1]
    wait_until(lambda: read_all_of(port, client_port), 60, "the exchange to read the request", every=0.005)
    small = ann.get(f"courses/{ALGO}/assignments")
    assert small.status_code == 200
    assert not select.select([collect.sock], [], [], 0)[0], "the small request was answered after the collect"
    collected = collect.getresponse()
    body = json.loads(collected.read())
    assert collected.status == 200, body
    assert {p: hashlib.sha256(base64.b64decode(t)).hexdigest() for p, t in body["files"].items()} == {
        p: hashlib.sha256(d).hexdigest() for p, d in files.items()
    }
