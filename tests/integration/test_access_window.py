"""A short course's access window closes while its trainee works: a real hub, its course-sync
service every 5 s, a trainee with a running server, a browser session and an API token.

Within one sync period of the close their server is stopped, their token refused, their session
sent to the login page, and logging in again is refused with the course's dates; a learner of an
academic course on the same hub and the short course's instructor keep everything.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import json
from zoneinfo import ZoneInfo

import httpx
import pytest

from hub_config import i18n
from hub_config.sync import LOCKED_OUT
from tests.services.hub import RunningHub, course, hub_xsrf, wait_until

pytestmark = [pytest.mark.hub, pytest.mark.slow]

SYNC_EVERY = 5  # seconds: courses_sync_every's minimum
# Seconds from the end of the setup (hub, two servers, three logins: 20 s to over a minute on a
# loaded 2-core machine) to the close. The course is written ending tomorrow, and its end is moved
# to this much after the setup: the clock, not the test, then closes the window.
CLOSES_IN = 20
PARIS = ZoneInfo("Europe/Paris")  # the test site's time zone (the schema's default)
TRAINEE, LEARNER, INSTRUCTOR = "aw-tom", "aw-ann", "aw-prof"


def short_course(opens: dt.datetime, closes: dt.datetime) -> dict:
    # Moments without a zone are read in the site's: the refusal shows them as written here.
    return course(
        "aw-short",
        [INSTRUCTOR],
        [TRAINEE],
        kind="short-course",
        start=opens.strftime("%Y-%m-%dT%H:%M:%S"),
        end=closes.strftime("%Y-%m-%dT%H:%M:%S"),
        access={"before": "0s", "after": "0s"},
    )


def new_token(hub: RunningHub, client: httpx.Client, name: str) -> str:
    """An API token made as the person would on the hub's token page."""
    r = client.post(
        f"/hub/api/users/{name}/tokens",
        json={"note": "access-window test", "expires_in": 3600},
        headers=hub_xsrf(client),
    )
    assert r.status_code == 201, r.text
    return r.json()["token"]


def whoami(hub: RunningHub, token: str) -> int:
    return httpx.get(f"{hub.url}/hub/api/user", headers={"Authorization": f"token {token}"}).status_code


def home_page(client: httpx.Client) -> httpx.Response:
    """The hub's home page as the person's browser asks it (cookies, no redirect followed)."""
    return client.get("/hub/home")


def servers(hub: RunningHub, name: str) -> dict:
    return hub.admin_api().get(f"/users/{name}").json().get("servers") or {}


def locked_out(hub: RunningHub) -> set[str]:
    r = hub.admin_api().get(f"/groups/{LOCKED_OUT}")
    return set(r.json()["users"]) if r.status_code == 200 else set()


@dataclasses.dataclass
class Closing:
    """The hub, each person's browser-like client and token, and when the window closed."""

    hub: RunningHub
    closes: dt.datetime
    clients: dict[str, httpx.Client]
    tokens: dict[str, str]
    stopped_at: dt.datetime  # when the trainee's server was seen stopped


@pytest.fixture(scope="module")
def closing():
    opens = dt.datetime.now(PARIS).replace(microsecond=0) - dt.timedelta(hours=1)
    tomorrow = opens + dt.timedelta(days=1)
    academic = course("aw-acad", ["aw-acadprof"], [LEARNER])
    site = {"courses_sync_every": f"{SYNC_EVERY}s"}
    hub = RunningHub([short_course(opens, tomorrow), academic], site=site)
    try:
        hub.start()
        clients, tokens = {}, {}
        for name in (TRAINEE, LEARNER, INSTRUCTOR):
            clients[name] = hub.login(name)
            tokens[name] = new_token(hub, clients[name], name)
        for name in (TRAINEE, LEARNER):
            hub.spawn(clients[name], name)
        closes = (dt.datetime.now(PARIS) + dt.timedelta(seconds=CLOSES_IN)).replace(microsecond=0)
        course_file = hub.root / "courses" / "aw-short" / "course.yaml"
        course_file.write_text(json.dumps(short_course(opens, closes)))  # YAML reads JSON
        # Before the close the trainee has everything the others have.
        left = (closes - dt.datetime.now(PARIS)).total_seconds()
        assert left > 0, f"the window closed {-left:.0f} s before the checks of the open window"
        assert whoami(hub, tokens[TRAINEE]) == 200
        assert home_page(clients[TRAINEE]).status_code == 200
        assert clients[TRAINEE].get(f"/user/{TRAINEE}/api/status").status_code == 200

        wait_until(
            lambda: not servers(hub, TRAINEE),
            timeout=left + 3 * SYNC_EVERY + 30,
            what=f"{TRAINEE}'s server to be stopped after the window closed at {closes:%H:%M:%S}",
            every=0.5,
        )
        stopped_at = dt.datetime.now(PARIS)
        wait_until(lambda: TRAINEE in locked_out(hub), 2 * SYNC_EVERY + 10, f"{TRAINEE} locked out")
        yield Closing(hub, closes, clients, tokens, stopped_at)
    except BaseException:
        print(hub.log()[-5000:])  # shown by pytest with the failure
        raise
    finally:
        hub.stop()


def test_the_trainees_server_stops_within_one_sync_period_of_the_close(closing):
    assert closing.stopped_at >= closing.closes, "stopped before the window closed"
    late = (closing.stopped_at - closing.closes).total_seconds()
    # one sync period, plus the server's own stop and this test's polling
    assert late <= SYNC_EVERY + 15, f"stopped {late:.0f} s after the close"
    hub = closing.hub
    home = str(hub.data / "homes" / TRAINEE)
    wait_until(
        lambda: not [p for p in hub.learner_processes() if (p.info["cwd"] or "").startswith(home)],
        timeout=20,
        what=f"{TRAINEE}'s processes to end",
    )
    page = closing.clients[TRAINEE].get(f"/user/{TRAINEE}/api/status")
    assert page.status_code != 200
    why = f"access window of aw-short closed {closing.closes:%Y-%m-%d %H:%M}"
    assert f"course-sync: stopped server of {TRAINEE}: {why}" in hub.log()
    assert f"course-sync: revoked the tokens of {TRAINEE}: {why}" in hub.log()


def test_the_trainees_token_that_worked_is_refused(closing):
    status = wait_until(
        lambda: (code := whoami(closing.hub, closing.tokens[TRAINEE])) != 200 and code,
        timeout=SYNC_EVERY + 10,
        what="the trainee's token to be refused",
    )
    # JupyterHub 6.1 answers 403, not 401, to a token it does not know. A failed auth refresh does
    # not refuse a token (Authenticator.auth_refresh_strict is off): this is the sync's revocation.
    assert status == 403


def test_the_trainees_browser_session_is_sent_to_the_login_page(closing):
    client = closing.clients[TRAINEE]
    r = wait_until(
        lambda: (page := home_page(client)).status_code == 302 and page,
        timeout=SYNC_EVERY + 10,
        what="the trainee's session to be refused",
    )
    assert "/hub/login" in r.headers["location"]


def test_logging_in_again_is_refused_with_the_courses_dates(closing):
    hub = closing.hub
    client = httpx.Client(base_url=hub.url, timeout=30)
    client.get("/hub/login")
    r = client.post(
        "/hub/login",
        data={"username": TRAINEE, "password": hub.passwords[TRAINEE], "_xsrf": client.cookies["_xsrf"]},
    )
    assert r.status_code == 403
    page = html.unescape(r.text)
    assert "aw-short" in page
    # the close as the page writes it in French (no Accept-Language: the site's default language),
    # in the site's time zone: "2 décembre 2026 à 05:01 (CET)"
    assert i18n.moment(closing.closes, "fr") in page
    assert "jupyterhub-hub-login" not in r.headers.get("set-cookie", "")


def test_a_learner_of_an_academic_course_keeps_everything(closing):
    hub, client = closing.hub, closing.clients[LEARNER]
    assert servers(hub, LEARNER)[""]["ready"]
    assert client.get(f"/user/{LEARNER}/api/status").status_code == 200
    assert whoami(hub, closing.tokens[LEARNER]) == 200
    assert home_page(client).status_code == 200
    assert LEARNER not in locked_out(hub)


def test_the_short_courses_instructor_is_not_locked_out(closing):
    hub, client = closing.hub, closing.clients[INSTRUCTOR]
    assert whoami(hub, closing.tokens[INSTRUCTOR]) == 200
    assert home_page(client).status_code == 200
    assert hub.login(INSTRUCTOR).get("/hub/home").status_code == 200
    assert INSTRUCTOR not in locked_out(hub)
    # and the trainee is still a learner of the course (files, submissions and grades are kept)
    assert TRAINEE in hub.admin_api().get("/groups/course-aw-short").json()["users"]
