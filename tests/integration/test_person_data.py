"""`ailys person export` and `ailys person forget` on a real trainee of a running hub: they log in
with their password, their server starts as their own Unix account, they save a file in their home
and submit an assignment to the exchange service. The export holds all of it; after forget their
hub user and password are gone (the login is refused), and so are their home, Unix account,
submission and log-in records."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import pwd
import sqlite3
import subprocess
import sys
import zipfile
from pathlib import Path

import httpx
import nbformat
import pytest

from grading.exchange.storage import ExchangeStore
from hub_config import roster
from hub_config.appliers.exchange import ACCESS
from hub_config.secrets import ensure_demo_logins
from tests.conftest import need
from tests.services.hub import RunningHub, course, hub_xsrf, server_xsrf, wait_until

pytestmark = pytest.mark.hub

AILYS = str(Path(sys.executable).parent / "ailys")
TRAINEE, PROF, SLUG = "pd-tina", "pd-prof", "pd-formation"


def notebook(source: str) -> bytes:
    return nbformat.writes(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source)])).encode()


def ailys(hub: RunningHub, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JUPYTERHUB_")}
    done = subprocess.run(
        [AILYS, *args, "--site", str(hub.site_file)], capture_output=True, text=True, timeout=300, env=env
    )
    assert done.returncode == 0, f"ailys {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def hub():
    need(os.geteuid() == 0, "a trainee's server runs as their own Unix account, which only root can make")
    today = dt.date.today()
    short = course(
        SLUG, [PROF], [], kind="short-course", start=str(today), end=str(today + dt.timedelta(days=1))
    )
    running = RunningHub([{**short, "assignments": [{"name": "ps1"}]}])
    trainee = {"username": TRAINEE, "email": "tina@acme.example", "first_name": "Tina", "last_name": "Émile"}
    roster.write_json(
        running.data / "cohorts" / f"{SLUG}.json", {"trainees": [{**trainee, "company": "Acme"}]}
    )
    running.passwords = ensure_demo_logins(running.secrets, [*running.catalogue.people(), TRAINEE])
    running.start()
    yield running
    running.stop()


def test_export_then_forget_a_trainee_who_logged_in_and_submitted(hub, tmp_path):
    api = hub.admin_api()
    # The course sync puts the cohort's trainee in the course group (the exchange asks the hub).
    wait_until(
        lambda: TRAINEE in (api.get(f"/groups/course-{SLUG}").json().get("users") or []),
        60,
        f"{TRAINEE} in course-{SLUG}",
    )
    client = hub.login(TRAINEE)
    hub.spawn(client, TRAINEE)
    xsrf = server_xsrf(client, TRAINEE)
    r = client.put(
        f"/user/{TRAINEE}/api/contents/mes-notes.txt",
        json={"type": "file", "format": "text", "content": "Réseaux de neurones, jour 1\n"},
        headers=xsrf,
    )
    assert r.status_code in (200, 201), r.text
    home = hub.data / "homes" / TRAINEE
    assert (home / "mes-notes.txt").is_file() and pwd.getpwnam(TRAINEE).pw_dir == str(home)

    # The instructor's release, in the exchange's store; the trainee submits through the exchange.
    store = ExchangeStore(hub.data / "exchange")
    store.release(SLUG, "ps1", {"ps1.ipynb": notebook("x = None")}, by=PROF, now=dt.datetime.now(dt.UTC))
    r = client.post(
        f"/hub/api/users/{TRAINEE}/tokens",
        json={"scopes": [ACCESS], "note": "nbgrader"},
        headers=hub_xsrf(client),
    )
    assert r.status_code == 201, r.text
    exchange = httpx.Client(
        base_url=f"http://127.0.0.1:{hub.catalogue.site.exchange.port}/services/exchange/api/",
        headers={"Authorization": f"token {r.json()['token']}"},
        timeout=30,
    )
    wait_until(lambda: _answers(exchange), 60, "the exchange service")
    body = {"files": {"ps1.ipynb": base64.b64encode(notebook("x = 42")).decode()}}
    r = exchange.post(f"courses/{SLUG}/assignments/ps1/submissions", json=body)
    assert r.status_code == 201, r.text

    # Export: everything above, in one zip
    out = tmp_path / "tina.zip"
    said = ailys(hub, "person", "export", TRAINEE, "--out", str(out))
    assert f"wrote {out}" in said
    with zipfile.ZipFile(out) as z:
        names = z.namelist()
        assert z.read("home/mes-notes.txt").decode() == "Réseaux de neurones, jour 1\n"
        [sub] = [
            n for n in names if n.startswith(f"exchange/{SLUG}/submissions/ps1/") and n.endswith(".ipynb")
        ]
        assert "x = 42" in z.read(sub).decode()
        assert [json.loads(line)["method"] for line in z.read("logins.jsonl").decode().splitlines()] == [
            "local"
        ]
        assert json.loads(z.read(f"cohorts/{SLUG}.json"))["trainees"][0]["company"] == "Acme"
        account = json.loads(z.read("hub/account.json"))
        assert f"course-{SLUG}" in account["groups"] and account["servers"][0]["started"]
        assert [t["note"] for t in account["api_tokens"] if t["note"] == "nbgrader"] == ["nbgrader"]
        assert "only a bcrypt hash of it is held" in z.read("README.txt").decode()

    # Forget: no question asked with --yes, each removal said
    said = ailys(hub, "person", "forget", TRAINEE, "--yes")
    for line in (
        f"removed: cohort record in {hub.data / 'cohorts' / (SLUG + '.json')}",
        f"removed: hub user {TRAINEE}: account",
        f"removed: local account of {TRAINEE}: password hash",
        f"removed: home {home}",
        f"removed: Unix account {TRAINEE}",
        f"removed: exchange/{SLUG}/submissions/ps1: 2 files",
        f"removed: log-in records {hub.data / 'logins' / (TRAINEE + '.jsonl')}",
    ):
        assert line in said, f"{line!r} not in:\n{said}"
    assert "through the running hub" in said
    assert api.get(f"/users/{TRAINEE}").status_code == 404
    with sqlite3.connect(hub.data / "jupyterhub.sqlite") as db:
        assert db.execute("select count(*) from users_info where username = ?", (TRAINEE,)).fetchone() == (0,)
    assert not home.exists() and not (hub.data / "logins" / f"{TRAINEE}.jsonl").exists()
    with pytest.raises(KeyError):
        pwd.getpwnam(TRAINEE)
    assert store.submissions(SLUG, learner=TRAINEE) == []
    # Their password no longer opens anything, and the course sync makes no account again.
    with pytest.raises(AssertionError, match="answered 403"):
        hub.login(TRAINEE)
    assert "nothing held on" in ailys(hub, "person", "forget", TRAINEE, "--yes")


def _answers(exchange: httpx.Client) -> bool:
    try:
        return exchange.get("courses").status_code == 200
    except httpx.HTTPError:
        return False
