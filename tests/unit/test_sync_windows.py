"""The course sync locks out trainees whose access window closed, with `now` given, and no hub."""

import datetime as dt
import json
from zoneinfo import ZoneInfo

import httpx
import pytest
from traitlets.config import Config

from hub_config.appliers.auth import apply_auth
from hub_config.catalogue import load_catalogue
from hub_config.secrets import Secrets
from hub_config.sync import LOCKED_OUT, HubAPI, Plan, Retirement, plan

from .conftest import SITE, course

PARIS = ZoneInfo("Europe/Paris")
# A one-day short course that ends at midnight (a moment, not a day), nothing allowed after it.
SHORT = course(
    "ia-industrie",
    kind="short-course",
    instructors=["prof-ia"],
    learners=["tom", "zoe", "ana"],
    start="2026-12-25T09:00",
    end="2026-12-26T00:00",
    access={"before": "1h", "after": "0s"},
)
# ana also follows an academic course: the short course's dates do not limit her.
ACADEMIC = course("algo", learners=["ana", "ben"], instructors=["prof"])
DURING = dt.datetime(2026, 12, 25, 23, 59, tzinfo=PARIS)
AFTER = dt.datetime(2026, 12, 26, 0, 0, tzinfo=PARIS)  # the window is half-open: closed from its end
BEFORE = dt.datetime(2026, 12, 25, 7, 59, tzinfo=PARIS)


@pytest.fixture
def catalogue(write_catalogue):
    site = {**SITE, "authentication": {"admin_users": ["root-admin"]}}
    return load_catalogue(write_catalogue(site=site, courses={"ia-industrie": SHORT, "algo": ACADEMIC}))


def hub_groups(catalogue, locked=()):
    """The groups as a previous sync left them."""
    groups = {
        "course-ia-industrie": {"tom", "zoe", "ana"},
        "staff-ia-industrie": {"prof-ia"},
        "course-algo": {"ana", "ben"},
        "staff-algo": {"prof"},
    }
    if locked is not None:
        groups[LOCKED_OUT] = set(locked)
    return groups


EVERYONE = {"tom", "zoe", "ana", "ben", "prof", "prof-ia", "root-admin"}


def test_nobody_is_retired_while_the_window_is_open(catalogue):
    p = plan(catalogue, EVERYONE, hub_groups(catalogue), {"tom": [""], "ana": [""]}, now=DURING)
    assert not p


def test_when_the_window_closes_the_trainees_servers_stop_and_tokens_go(catalogue):
    servers = {"tom": ["", "gpu"], "ana": [""], "prof-ia": [""], "root-admin": [""]}
    p = plan(catalogue, EVERYONE, hub_groups(catalogue, locked=None), servers, now=AFTER)
    why = "access window of ia-industrie closed 2026-12-26 00:00"
    assert p.retire == [Retirement("tom", why, ("", "gpu"), True), Retirement("zoe", why, (), True)]
    assert p.create_groups == [LOCKED_OUT]  # the group that marks them done, made at the first closing
    assert p.lines() == [
        f"create group {LOCKED_OUT}",
        f"stopped server of tom: {why}",
        f"stopped server 'gpu' of tom: {why}",
        f"revoked the tokens of tom: {why}",
        f"revoked the tokens of zoe: {why}",
    ]
    # They stay in the hub and in their course's group: their files and grades are kept.
    assert not p.create_users and not p.remove and not p.reopen


def test_a_locked_out_trainee_costs_nothing_until_a_server_of_theirs_runs_again(catalogue):
    done = hub_groups(catalogue, locked={"tom", "zoe"})
    assert not plan(catalogue, EVERYONE, done, {"ana": [""]}, now=AFTER + dt.timedelta(days=30))
    # an admin started one for them: stopped again, tokens not listed again
    p = plan(catalogue, EVERYONE, done, {"zoe": [""]}, now=AFTER)
    assert p.retire == [
        Retirement("zoe", "access window of ia-industrie closed 2026-12-26 00:00", ("",), False)
    ]
    assert p.lines() == ["stopped server of zoe: access window of ia-industrie closed 2026-12-26 00:00"]


def test_before_the_window_opens_the_reason_says_when_it_opens(catalogue):
    p = plan(catalogue, EVERYONE, hub_groups(catalogue), {}, now=BEFORE)
    assert [r.name for r in p.retire] == ["tom", "zoe"]
    assert p.retire[0].why == "access window of ia-industrie opens 2026-12-25 08:00"


def test_a_window_open_again_lets_them_back_in(catalogue):
    # The course was moved a day later: its trainees leave the locked-out group.
    moved = {**SHORT, "start": "2026-12-26T09:00", "end": "2026-12-27T00:00"}
    (catalogue.courses_dir / "ia-industrie" / "course.yaml").write_text(json.dumps(moved))
    later = load_catalogue(catalogue.site_file)
    p = plan(later, EVERYONE, hub_groups(later, locked={"tom", "zoe"}), {}, now=AFTER + dt.timedelta(hours=9))
    assert p.reopen == ["tom", "zoe"] and not p.retire
    assert p.lines() == ["let tom in again: access window open", "let zoe in again: access window open"]


def test_a_closed_trainee_not_yet_in_the_hub_is_only_created(catalogue):
    p = plan(catalogue, EVERYONE - {"zoe"}, hub_groups(catalogue, locked={"tom"}), {}, now=AFTER)
    assert p.create_users == ["zoe"] and not p.retire  # the next sync locks the new user out


def test_plan_defaults_to_the_current_time(catalogue):
    # whatever today is, the plan agrees with the catalogue's own verdict at this moment
    p = plan(catalogue, EVERYONE, hub_groups(catalogue), {})
    assert [r.name for r in p.retire] == [n for n in ("tom", "zoe") if catalogue.closed_for(n)]


def test_apply_stops_then_revokes_then_marks_and_tolerates_a_token_gone_with_its_client():
    # The order of the hub calls (the real hub is in tests/integration/test_access_window.py):
    # joining the locked-out group comes last, so a failure before it is retried next sync.
    calls = []

    def hub(request: httpx.Request) -> httpx.Response:
        calls.append(f"{request.method} {request.url.path}")
        if request.method == "GET":
            tokens = [
                {"id": "a1", "client_id": "jupyterhub"},
                {"id": "a2", "client_id": "jupyterhub-user-tom"},
            ]
            tokens.append({"id": "a3", "client_id": "jupyterhub-user-tom"})
            return httpx.Response(200, json={"api_tokens": tokens})
        if request.url.path.endswith("/a3"):  # deleted with a2: same OAuth client
            return httpx.Response(404, json={"message": "No such token"})
        return httpx.Response(204)

    api = HubAPI("http://hub/hub/api/", "t")
    api.client = httpx.Client(base_url="http://hub/hub/api/", transport=httpx.MockTransport(hub))
    why = "access window of ia-industrie closed 2026-12-26 00:00"
    api.apply(Plan([], [], {}, {}, [], retire=[Retirement("tom", why, ("", "gpu"), True)], reopen=["zoe"]))
    assert calls == [
        "DELETE /hub/api/users/tom/server",
        "DELETE /hub/api/users/tom/servers/gpu",
        "GET /hub/api/users/tom/tokens",
        "DELETE /hub/api/users/tom/tokens/a1",
        "DELETE /hub/api/users/tom/tokens/a2",
        "DELETE /hub/api/users/tom/tokens/a3",
        f"POST /hub/api/groups/{LOCKED_OUT}/users",
        f"DELETE /hub/api/groups/{LOCKED_OUT}/users",
    ]


def test_auth_refresh_is_no_slower_than_the_sync(write_catalogue):
    for every, refresh in (("5s", 5), ("1m", 60), ("1h", 300)):
        site = {**SITE, "courses_sync_every": every}
        catalogue = load_catalogue(write_catalogue(site=site, courses={}))
        c = Config()
        apply_auth(c, catalogue, Secrets(catalogue.data_dir, "p" * 64, "s" * 64, "c" * 64))
        assert c.Authenticator.auth_refresh_age == refresh
