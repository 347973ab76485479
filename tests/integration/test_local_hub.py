"""The local site, for real: hub, proxy and learner servers as processes on loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid

import httpx
import pytest
import yaml
from websockets.sync.client import connect

from hub_config.secrets import read_demo_logins
from tests.services.hub import RunningHub, course, hub_xsrf, server_xsrf, wait_until

pytestmark = pytest.mark.hub

COURSES = [
    course("algo", ["prof-a"], ["alice", "bob"]),
    course("stats", ["prof-b"], ["carol"]),
]
MATERIAL = {"algo": {"bienvenue.md": "# Bienvenue en algo\n"}}


@pytest.fixture(scope="module")
def hub():
    running = RunningHub(COURSES, materials=MATERIAL).start()
    yield running
    running.stop()


def run_code(hub, client, name: str, code: str) -> str:
    """Start a kernel on ``name``'s server, run ``code`` over the websocket, return its stdout."""
    headers = server_xsrf(client, name)
    kernel = client.post(f"/user/{name}/api/kernels", json={"name": "python3"}, headers=headers).json()
    cookie = "; ".join(f"{c.name}={c.value}" for c in client.cookies.jar)
    url = hub.url.replace("http", "ws") + f"/user/{name}/api/kernels/{kernel['id']}/channels"
    msg_id = uuid.uuid4().hex
    request = {
        "header": {
            "msg_id": msg_id,
            "msg_type": "execute_request",
            "username": name,
            "session": uuid.uuid4().hex,
            "version": "5.3",
        },
        "parent_header": {},
        "metadata": {},
        "channel": "shell",
        "content": {
            "code": code,
            "silent": False,
            "store_history": False,
            "user_expressions": {},
            "allow_stdin": False,
        },
    }
    out = []
    with connect(url, additional_headers={"Cookie": cookie}, open_timeout=30) as ws:
        ws.send(json.dumps(request))
        while True:
            msg = json.loads(ws.recv(timeout=60))
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            if msg["msg_type"] == "stream":
                out.append(msg["content"]["text"])
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                return "".join(out)


def test_login_form_refuses_a_wrong_password_and_accepts_the_right_one(hub):
    with pytest.raises(AssertionError, match="answered 403"):
        hub.login("alice", "not-her-password")
    assert hub.login("alice").cookies.get("jupyterhub-session-id")


def test_learner_spawns_reaches_status_and_finds_starter_material(hub):
    alice = hub.login("alice")
    hub.spawn(alice, "alice")
    status = alice.get("/user/alice/api/status")
    assert status.status_code == 200 and "started" in status.json()
    listing = alice.get("/user/alice/api/contents/algo").json()
    assert [f["name"] for f in listing["content"]] == ["bienvenue.md"]


def test_kernel_runs_code_over_the_websocket_as_the_learner(hub):
    alice = hub.login("alice")
    hub.spawn(alice, "alice")
    out = run_code(hub, alice, "alice", "import getpass, os; print(6 * 7, getpass.getuser(), os.getcwd())")
    answer, user, cwd = out.split()
    assert answer == "42"
    assert cwd == str(hub.data / "homes" / "alice")
    if os.geteuid() == 0:
        assert user == "alice"  # a real account of her own, not the hub's


def test_a_learner_cannot_reach_another_learners_server(hub):
    alice, bob = hub.login("alice"), hub.login("bob")
    hub.spawn(alice, "alice")
    r = bob.get("/user/alice/api/contents/", follow_redirects=True)
    assert r.status_code in (403, 404)
    assert "bienvenue" not in r.text
    assert bob.get("/hub/api/users/alice").status_code in (403, 404)


@pytest.mark.skipif(os.geteuid() != 0, reason="homes belong to distinct accounts only under a root hub")
def test_a_learners_home_is_closed_to_other_accounts(hub):
    alice = hub.login("alice")
    hub.spawn(alice, "alice")
    carol = hub.login("carol")
    hub.spawn(carol, "carol")
    out = run_code(
        hub,
        carol,
        "carol",
        f"import os\ntry:\n    print(os.listdir({str(hub.data / 'homes' / 'alice')!r}))\nexcept PermissionError:\n    print('denied')",
    )
    assert out.strip() == "denied"


def test_instructor_reaches_own_learner_but_not_another_courses(hub):
    alice, carol = hub.login("alice"), hub.login("carol")
    hub.spawn(alice, "alice")
    hub.spawn(carol, "carol")
    prof_a = hub.login("prof-a")
    assert hub.open_server(prof_a, "alice").status_code == 200
    assert prof_a.get("/user/alice/api/contents/algo").json()["content"][0]["name"] == "bienvenue.md"
    r = hub.open_server(prof_a, "carol")
    assert r.status_code == 403
    assert prof_a.get("/user/carol/api/contents/").status_code == 403
    assert prof_a.get("/hub/api/users/carol").status_code in (403, 404)


def test_instructors_api_token_reaches_own_learner_but_not_another_courses(hub):
    alice, carol = hub.login("alice"), hub.login("carol")
    hub.spawn(alice, "alice")
    hub.spawn(carol, "carol")
    prof_a = hub.login("prof-a")
    headers = hub_xsrf(prof_a)
    # Default scopes (what /hub/token asks for) and the course role by name.
    for body in ({"note": "default scopes"}, {"roles": ["instructor-algo"]}):
        made = prof_a.post("/hub/api/users/prof-a/tokens", json=body, headers=headers)
        assert made.status_code == 201, made.text
        token = {"Authorization": f"token {made.json()['token']}"}
        with httpx.Client(base_url=hub.url, headers=token, timeout=30) as api:
            assert api.get("/user/alice/api/status").status_code == 200, body
            assert api.get("/user/alice/api/contents/algo").json()["content"][0]["name"] == "bienvenue.md"
            assert api.get("/user/carol/api/status").status_code in (403, 404), body
            assert api.get("/hub/api/users/carol").status_code in (403, 404), body


def sync(hub) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hub_config.cli", "courses", "--site", str(hub.site_file), "sync"],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_new_course_folder_goes_live_after_sync_and_broken_one_changes_nothing(hub):
    api = hub.admin_api()
    folder = hub.root / "courses" / "optim"
    folder.mkdir()
    (folder / "course.yaml").write_text(yaml.safe_dump(course("optim", ["prof-c"], ["dave", "alice"])))
    done = sync(hub)
    assert done.returncode == 0, done.stderr
    # (the hub's own course-sync service may have seen the folder first: the state is what counts)
    assert set(api.get("/groups/course-optim").json()["users"]) == {"alice", "dave"}
    assert api.get("/groups/staff-optim").json()["users"] == ["prof-c"]

    # The new course's instructor (a demo account, given a password by the sync) logs in and
    # reaches the new course's learner.
    hub.passwords = read_demo_logins(hub.secrets.demo_logins_file)
    hub.spawn(hub.login("alice"), "alice")
    prof_c = hub.login("prof-c")
    hub.open_server(prof_c, "alice")
    assert prof_c.get("/user/alice/api/contents/").status_code == 200

    before = {g["name"]: sorted(g["users"]) for g in api.get("/groups").json()}
    broken = hub.root / "courses" / "broken"
    broken.mkdir()
    (broken / "course.yaml").write_text(
        "slug: broken\ntitle: {fr: x, en: y}\nkind: academic\ninstructorz: [x]\n"
    )
    (folder / "course.yaml").write_text(yaml.safe_dump(course("optim", ["prof-c"], ["dave"])))
    refused = sync(hub)
    assert refused.returncode == 1
    assert "broken/course.yaml: instructorz: unknown key" in refused.stderr
    assert {g["name"]: sorted(g["users"]) for g in api.get("/groups").json()} == before
    broken.joinpath("course.yaml").unlink()
    broken.rmdir()


def test_hub_restart_keeps_a_running_server_reachable():
    hub = RunningHub([course("algo", ["prof-a"], ["erin"])]).start()
    try:
        erin = hub.login("erin")
        hub.spawn(erin, "erin")
        pid_before = [p.pid for p in hub.learner_processes()]
        hub.stop_hub(signal.SIGKILL)
        assert erin.get("/user/erin/api/status").status_code == 200  # the proxy still routes to it
        hub.start_hub()
        assert hub.server_ready("erin")
        assert erin.get("/user/erin/api/status").status_code == 200
        assert [p.pid for p in hub.learner_processes()] == pid_before  # the same server, not a new one
    finally:
        hub.stop()


def test_a_server_whose_port_was_taken_starts_on_another_and_nobody_lands_elsewhere():
    """The port the spawner picked is taken before the server binds it (here by a socket that
    accepts and never speaks, as a kernel's ZMQ socket does): the spawner must not take that
    listener for the server, and starts the server again on another port."""
    import socket

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    hub = RunningHub([course("algo", ["prof-a"], ["gail"])])
    (hub.data / "jupyterhub_config.d" / "60-taken-port.py").write_text(f"c.Spawner.port = {taken}\n")
    hub.start()
    try:
        gail = hub.login("gail")
        hub.spawn(gail, "gail")
        r = gail.get("/user/gail/api/status")
        assert r.status_code == 200 and "started" in r.json(), r.text
        url = hub.admin_api().get("/users/gail").json()["servers"][""]["url"]
        assert url == "/user/gail/"
        assert f"before serving on port {taken} (attempt 1 of 3)" in hub.log()
    finally:
        hub.stop()
        squatter.close()


def test_idle_culler_stops_an_idle_server():
    hub = RunningHub(
        [course("algo", ["prof-a"], ["frank"])], culler={"timeout": "10s", "every": "5s"}
    ).start()
    try:
        frank = hub.login("frank")
        hub.spawn(frank, "frank")
        wait_until(
            lambda: not hub.server_ready("frank"), 60, "the culler to stop frank's idle server", every=1
        )
        assert frank.get("/user/frank/api/status").status_code != 200
        assert "Culling server" in (hub.data / "logs" / "hub.log").read_text() or not hub.learner_processes()
    finally:
        hub.stop()


def test_the_hub_does_not_start_on_an_invalid_catalogue(tmp_path):
    from hub_config.launch import HUB_CONFIG

    (tmp_path / "courses" / "algo").mkdir(parents=True)
    (tmp_path / "courses" / "algo" / "course.yaml").write_text(
        yaml.safe_dump(course("algo", ["p"], ["q"], kind="x"))
    )
    (tmp_path / "bad.yaml").write_text("name: bad\ndata_dir: data\ncourses_dir: courses\n")
    env = {**os.environ, "AILYS_SITE": str(tmp_path / "bad.yaml")}
    out = subprocess.run(
        [sys.executable, "-m", "jupyterhub", "-f", str(HUB_CONFIG)],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode != 0
    assert "not starting, the catalogue is invalid" in out.stderr
    assert "courses/algo/course.yaml: kind:" in out.stderr
    assert not (tmp_path / "data" / "jupyterhub.sqlite").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="servers run as learners' own accounts only under a root hub")
def test_a_learner_whose_account_is_a_system_one_is_refused_before_any_process(hub):
    """A course lists a person whose Unix account was made with useradd --system under a name the
    schema does not reserve: the spawn is refused by uid (spawner.min_uid), nothing of theirs starts."""
    import shutil

    import psutil

    from tests.services import system_account

    name = "sysacct-local"  # a name no other test uses
    with system_account(name) as account:
        folder = hub.root / "courses" / "sysacct"
        try:
            assert account.pw_uid < 1000
            folder.mkdir()
            (folder / "course.yaml").write_text(yaml.safe_dump(course("sysacct", ["prof-a"], [name])))
            assert sync(hub).returncode == 0
            hub.passwords = read_demo_logins(hub.secrets.demo_logins_file)
            client = hub.login(name)
            headers = hub_xsrf(client)
            r = client.post(f"/hub/api/users/{name}/server", headers=headers)
            said = f"Not started: the Unix account {name} cannot run a learner's server: its uid {account.pw_uid}"
            assert r.status_code == 403 and r.json()["message"].startswith(said), r.text
            with client.stream("GET", f"/hub/api/users/{name}/server/progress", headers=headers) as events:
                last = [json.loads(line[5:]) for line in events.iter_lines() if line.startswith("data:")][-1]
            assert last["failed"] and last["message"].startswith(f"Spawn failed: {said}"), last
            assert f"Refused to start a server for {name} as Unix account {name}: its uid" in hub.log()
            assert not hub.server_ready(name) and not (hub.data / "homes" / name).exists()
            uids = [p.info["uids"] for p in psutil.process_iter(["uids"])]
            assert account.pw_uid not in {u.real for u in uids if u} | {u.effective for u in uids if u}
        finally:
            shutil.rmtree(folder, ignore_errors=True)
