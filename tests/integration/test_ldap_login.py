"""Mesolys accounts (authentication.kind ldap) against a real slapd and a real hub.

The directory (tests/services/ldap.py) holds the people of a course: a learner listed in
course.yaml, members of the course's directory group, one who will be disabled, the instructor.
A trainee has a local account only. Everyone logs in through the hub's login form, as a browser
posts it. The hub refreshes auth every second here (a drop-in), so "at the next refresh" is now.

Unix names start with ``ld-`` (a root hub creates an account for each learner whose server starts).
"""

from __future__ import annotations

import base64
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import bcrypt
import httpx
import pytest

from tests.conftest import OUTPUT
from tests.services import ldap as slapd
from tests.services.hub import RunningHub, course, wait_until
from tests.services.ldap import LdapPerson

pytestmark = [pytest.mark.ldap, pytest.mark.hub]

REPO = Path(__file__).resolve().parents[2]
LOGS = OUTPUT / "test_ldap_login"
SLUG = "ld-ia"
GROUP = "m2-ia-ld"
PASSWORDS = {
    "ld-ana": "Ana-directory-pw-1",  # member of the course's group
    "ld-ben": "Ben-directory-pw-2",  # listed in course.yaml
    "ld-cleo": "Cleo-directory-pw-3",  # member, disabled before she logs in
    "ld-dora": "Dora-directory-pw-4",  # member, disabled while logged in
    "ld-prof": "Prof-directory-pw-5",  # the instructor
}
LATE = ("ld-emil", "Emil-directory-pw-6")  # joins the group while the hub runs
TRAINEE = ("ld-trainee", "Trainee-local-pw-7")  # a local account, not in the directory
UNAVAILABLE_EN = "Identity service unavailable"
UNAVAILABLE_FR = "indisponible"


@pytest.fixture(scope="module")
def directory():
    with slapd.serving(PASSWORDS, {GROUP: ["ld-ana", "ld-cleo", "ld-dora"]}, LOGS, "ld-") as server:
        yield server


@pytest.fixture(scope="module")
def hub(directory):
    learners_from = {"ldap_group": directory.group_dn(GROUP)}
    c = course(SLUG, ["ld-prof"], ["ld-ben", TRAINEE[0]], learners_from=learners_from)
    site = {
        # The gallery stays on: it runs as its own account, which cannot read <data_dir>/rosters/,
        # and reads membership from the hub's groups instead (gallery/demos.py).
        "authentication": {"kind": "ldap", "ldap": directory.site_section(), "admin_users": []},
    }
    running = RunningHub([c], site=site)
    # "at the next auth refresh" within the test: refresh every second
    (running.data / "jupyterhub_config.d" / "60-test-refresh.py").write_text(
        "c.Authenticator.auth_refresh_age = 1\n"
    )
    running.passwords.update(PASSWORDS)
    try:
        running.start()
        _add_local_account(running, *TRAINEE)
        done = _sync(running)  # the group's members, now (the hub's own sync runs at its pace)
        assert done.returncode == 0, done.stderr
        yield running
    finally:
        if running.hub is not None:  # kept for whoever reads a failure
            LOGS.mkdir(parents=True, exist_ok=True)
            (LOGS / "hub.log").write_text(running.log())
        running.stop()


def _add_local_account(hub: RunningHub, name: str, password: str) -> None:
    """A trainee's local account, as the cohorts' invitation leaves it (NativeAuthenticator's row)."""
    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
    otp = base64.b32encode(b"0123456789").decode()
    with sqlite3.connect(hub.data / "jupyterhub.sqlite") as db:
        db.execute(
            "INSERT INTO users_info (username, password, is_authorized, login_email_sent, has_2fa, otp_secret)"
            " VALUES (?, ?, 1, 0, 0, ?)",
            (name, hashed, otp),
        )


def _post_login(hub: RunningHub, name: str, password: str) -> tuple[httpx.Client, httpx.Response]:
    # an English reader (the pages speak the browser's language, French by default)
    client = httpx.Client(base_url=hub.url, timeout=30, headers={"Accept-Language": "en"})
    client.get("/hub/login")
    form = {"username": name, "password": password, "_xsrf": client.cookies["_xsrf"]}
    return client, client.post("/hub/login", data=form)


def _sync(hub: RunningHub) -> subprocess.CompletedProcess:
    ailys = [sys.executable, "-m", "hub_config.cli"]
    return subprocess.run(
        [*ailys, "courses", "--site", str(hub.site_file), "sync"], capture_output=True, text=True, cwd=REPO
    )


def _members(hub: RunningHub) -> set[str]:
    return set(hub.admin_api().get(f"/groups/course-{SLUG}").json()["users"])


def test_a_directory_learner_logs_in_with_the_directory_password(hub):
    client = hub.login("ld-ana", PASSWORDS["ld-ana"])
    home = client.get("/hub/home")
    assert home.status_code == 200 and "ld-ana" in home.text


def test_a_wrong_password_is_refused(hub):
    _, r = _post_login(hub, "ld-ana", "not-her-password")
    assert r.status_code == 403 and "Invalid username or password" in r.text
    _, r = _post_login(hub, "ld-nobody", "whatever-password")
    assert r.status_code == 403 and "Invalid username or password" in r.text


def test_a_disabled_account_is_refused_at_login_with_a_message(hub, directory):
    directory.disable("ld-cleo")
    _, r = _post_login(hub, "ld-cleo", PASSWORDS["ld-cleo"])
    assert r.status_code == 403
    assert "Your Mesolys directory account is disabled" in r.text


def test_a_disabled_account_is_refused_at_its_next_auth_refresh(hub, directory):
    client = hub.login("ld-dora", PASSWORDS["ld-dora"])
    assert client.get("/hub/home").status_code == 200
    directory.disable("ld-dora")

    def sent_to_login():
        r = client.get("/hub/home")
        return r.status_code == 302 and "/hub/login" in r.headers["location"]

    wait_until(sent_to_login, 15, "ld-dora's session to be refused at its auth refresh")
    assert "ld-dora's directory account is disabled or gone" in hub.log()


def test_a_local_account_logs_in_on_the_same_form(hub):
    client = hub.login(*TRAINEE)
    assert client.get("/hub/home").status_code == 200
    _, r = _post_login(hub, TRAINEE[0], "not-the-trainee-password")
    assert r.status_code == 403


def test_a_new_group_member_flows_into_the_course_after_a_sync(hub, directory):
    name, password = LATE
    directory.add_person(LdapPerson(name, password))
    directory.add_to_group(GROUP, name)
    _, r = _post_login(hub, name, password)
    assert r.status_code == 403  # in the directory, but in no course yet
    done = _sync(hub)
    assert done.returncode == 0, done.stderr
    assert name in _members(hub) and "ld-ana" in _members(hub) and "ld-ben" in _members(hub)
    hub.login(name, password)  # a learner now


def test_a_trainee_never_takes_the_name_of_a_directory_account(directory, tmp_path):
    """A cohort import on an LDAP site asks the directory: Zoé Ldcohort would be zldcohort, which
    a Mesolys person already holds, so she gets zldcohort2 (her local account would otherwise
    shadow his at login)."""
    import yaml

    from hub_config.catalogue import load_catalogue
    from hub_config.cohorts.spreadsheet import Trainee
    from hub_config.cohorts.store import import_trainees

    directory.add_person(LdapPerson("zldcohort", "Zldcohort-directory-pw-8", surname="Ldcohort"))
    short = course("ld-short", ["ld-prof"], [], kind="short-course", start="2026-11-30", end="2026-12-04")
    (tmp_path / "courses" / "ld-short").mkdir(parents=True)
    (tmp_path / "courses" / "ld-short" / "course.yaml").write_text(yaml.safe_dump(short))
    site = {
        "name": "ldnames",
        "data_dir": "data",
        "courses_dir": "courses",
        "authentication": {"kind": "ldap", "ldap": directory.site_section()},
    }
    (tmp_path / "ldnames.yaml").write_text(yaml.safe_dump(site))
    catalogue = load_catalogue(tmp_path / "ldnames.yaml")
    zoe = Trainee(email="zoe@example.org", first_name="Zoé", last_name="Ldcohort", company="Acme", line=2)
    imported = import_trainees(catalogue, "ld-short", [zoe], accounts=set())
    assert [t["username"] for t in imported.added] == ["zldcohort2"]


def test_the_directory_down_gives_a_clear_page_and_servers_stay_up(hub, directory):
    client = hub.login("ld-ben", PASSWORDS["ld-ben"])
    hub.spawn(client, "ld-ben")
    logged_in = hub.login("ld-ana", PASSWORDS["ld-ana"])
    members_before = _members(hub)
    directory.stop_daemon()
    try:
        # a login: the clear page, in French and English, no traceback
        _, r = _post_login(hub, "ld-prof", PASSWORDS["ld-prof"])
        assert r.status_code == 503
        assert UNAVAILABLE_EN in r.text and UNAVAILABLE_FR in r.text
        assert "Traceback" not in r.text
        # the hub is up
        assert hub.hub.poll() is None
        assert httpx.get(f"{hub.url}/hub/api/", timeout=10).status_code == 200

        # a session open before the outage is kept through its refreshes (every second here)
        def kept_through_a_refresh():
            home = logged_in.get("/hub/home")
            assert home.status_code == 200, f"ld-ana's session answered {home.status_code} during the outage"
            return "Directory unavailable at the auth refresh of ld-ana, session kept" in hub.log()

        wait_until(kept_through_a_refresh, 15, "a refresh of ld-ana's session during the outage", every=0.5)
        # a running server still answers its owner
        status = client.get("/user/ld-ben/api/status")
        assert status.status_code == 200, status.text[:300]
        # a sync keeps the members last read, warns, and changes nothing else
        done = _sync(hub)
        assert done.returncode == 0, done.stderr
        assert "directory unavailable, keeping the group members last read" in done.stderr
        assert _members(hub) == members_before
        assert "Traceback" not in hub.log()
    finally:
        directory.start_daemon()
    hub.login("ld-prof", PASSWORDS["ld-prof"])  # back: logins work again


def test_a_directory_that_hangs_gives_the_clear_page_after_its_timeout_and_blocks_no_one(hub, directory):
    timeout = 3  # the site's ldap.timeout (SlapdServer.site_section)
    answered = {}

    def log_in():
        began = time.monotonic()
        _, answered["response"] = _post_login(hub, "ld-prof", PASSWORDS["ld-prof"])
        answered["seconds"] = time.monotonic() - began

    with directory.frozen():
        attempt = threading.Thread(target=log_in)
        attempt.start()
        # while that login waits for the directory, the hub answers everyone else at once
        while attempt.is_alive():
            began = time.monotonic()
            assert httpx.get(f"{hub.url}/hub/api/", timeout=10).status_code == 200
            assert time.monotonic() - began < 1, "the hub's event loop waited for the directory"
            attempt.join(0.2)
    r = answered["response"]
    assert r.status_code == 503 and UNAVAILABLE_EN in r.text
    assert timeout <= answered["seconds"] < 4 * timeout + 10  # its timeout, not TCP's minutes


def test_the_service_password_is_in_neither_the_hub_log_nor_ailys_render(hub, directory):
    render = subprocess.run(
        [sys.executable, "-m", "hub_config.cli", "render", "--site", str(hub.site_file)],
        capture_output=True,
        text=True,
        cwd=REPO,
    )
    assert render.returncode == 0, render.stderr
    assert directory.service_dn in render.stdout  # the account is named, its password is not
    assert directory.service_password not in render.stdout + render.stderr
    assert directory.service_password not in hub.log()
    for password in PASSWORDS.values():
        assert password not in hub.log()
