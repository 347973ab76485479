"""A team's shared server with real-time collaboration, on a real hub with real Unix accounts.

Two members, each in a Chromium context of their own, open one notebook on the team server: what
one types shows in the other's page within seconds, with the author's hub name on their cursor. A
member of another team and a learner outside every team get 403 there. The server stopped and
started again still has the notebook, since it lives in the team folder, and the files it writes
are the team group's and group-writable. A learner's own server has no collaboration (its route
answers 404, its page config turns the plugins off); the team server has it.

Until the course sync makes the team's Unix group and folder (hub_config/provision.py), the
fixture makes them as the sync would: group team-<course>-<team>, folder mode 2770 in teams.dir.
"""

from __future__ import annotations

import grp
import json
import os
import subprocess
import time

import httpx
import pytest

from hub_config.teams import teams_of
from tests.conftest import need
from tests.e2e.a11y import assert_accessible
from tests.e2e.chromium import lab_page
from tests.services.hub import RunningHub, course, make_team_folder, one_cell_notebook, wait_until

pytestmark = [pytest.mark.hub]

SLUG = "t15b"  # team accounts team-t15b-<team>: this module's prefix
TEAM = f"team-{SLUG}-vision"
VISION = ["t15b-alice", "t15b-bob", "t15b-carol", "t15b-dave"]
NLP = ["t15b-erin", "t15b-fred", "t15b-gus", "t15b-hana"]
OUTSIDER = "t15b-ivan"  # a learner of the course in no team
NOTEBOOK = "shared.ipynb"
TYPED = "print('hello from alice')"

# Seconds; generous for a loaded 2-core machine, and all are waits for a condition.
SPAWN_TIMEOUT = 90
UI_TIMEOUT = 30
ARRIVAL_TIMEOUT = 10  # "within a few seconds"


@pytest.fixture(scope="module")
def hub():
    need(os.geteuid() == 0, "team servers run as the team account: the hub must run as root")
    project = course(
        SLUG,
        ["t15b-prof"],
        [*VISION, *NLP, OUTSIDER],
        kind="project-team",
        teams=[
            {"name": "vision", "members": VISION, "mentors": ["t15b-prof"]},
            {"name": "nlp", "members": NLP, "mentors": ["t15b-prof"]},
        ],
    )
    # No demo gallery, no footprint service: this module needs neither.
    running = RunningHub(
        [project], site={"gallery": {"enabled": False}, "energy": {"service": {"enabled": False}}}
    )
    team = next(t for t in teams_of(running.catalogue) if t.name == TEAM)
    made_group = make_team_folder(team.folder, TEAM, {NOTEBOOK: one_cell_notebook("x = 1")})
    try:
        running.start()
        # The course sync makes the team account's hub user.
        wait_until(
            lambda: running.admin_api().get(f"/users/{TEAM}").status_code == 200, 60, "the team account"
        )
        running.team_folder = team.folder
        yield running
    finally:
        running.stop()
        if made_group:
            subprocess.run(["groupdel", TEAM], capture_output=True)


def _xsrf(client: httpx.Client, server: str | None = None) -> dict:
    """The XSRF header for the hub's API, or for ``server``'s (each sets its own _xsrf cookie)."""
    path = f"/user/{server}/" if server else "/hub/"
    token = next(c.value for c in client.cookies.jar if c.name == "_xsrf" and c.path == path)
    return {"X-XSRFToken": token}


def _running(hub, name: str) -> bool:
    return hub.server_ready(name)


def _stopped(hub, name: str) -> bool:
    user = hub.admin_api().get(f"/users/{name}").json()
    return not (user.get("servers") or {}).get("")


def _page_config(html: str) -> dict:
    start = html.index('id="jupyter-config-data"')
    body = html[html.index(">", start) + 1 : html.index("</script>", start)]
    return json.loads(body)


COLLAB_PLUGINS = ["@jupyter/collaboration-extension", "@jupyter/docprovider-extension"]


def test_team_server_has_collaboration_and_a_learner_server_has_none(hub):
    learner = hub.login(OUTSIDER)
    hub.spawn(learner, OUTSIDER, timeout=SPAWN_TIMEOUT)
    lab = hub.open_server(learner, OUTSIDER)
    assert set(COLLAB_PLUGINS) <= set(_page_config(lab.text)["disabledExtensions"])
    session = learner.put(
        f"/user/{OUTSIDER}/api/collaboration/session/x.ipynb",
        json={"format": "json", "type": "notebook"},
        headers=_xsrf(learner, OUTSIDER),
    )
    assert session.status_code == 404, session.text

    member = hub.login(VISION[0])
    r = member.get(f"/hub/spawn/{TEAM}", follow_redirects=False)
    assert r.status_code in (302, 303), r.text
    wait_until(lambda: _running(hub, TEAM), SPAWN_TIMEOUT, "the team server")
    # Straight to the team's JupyterLab: no "Authorize access" page although it is not the
    # member's own server (hub_config/team_servers.py, install_team_server_access).
    lab = member.get(f"/user/{TEAM}/lab", follow_redirects=True)
    assert lab.status_code == 200 and "/oauth2/authorize" not in str(lab.url), lab.url
    config = _page_config(lab.text)
    assert not set(COLLAB_PLUGINS) & set(config["disabledExtensions"])
    assert "@jupyter/nbgrader" in config["disabledExtensions"]  # the team account is no learner
    assert config.get("disableRTC") is False  # jupyter-collaboration's server side is loaded
    session = member.put(
        f"/user/{TEAM}/api/collaboration/session/{NOTEBOOK}",
        json={"format": "json", "type": "notebook"},
        headers=_xsrf(member, TEAM),
    )
    assert session.status_code in (200, 201), session.text
    # The server's root is the team folder, it runs as the team account in the team's group.
    me = member.get(f"/user/{TEAM}/api/me").json()
    assert me["identity"]["username"] == VISION[0]  # the member, not the team account
    contents = member.get(f"/user/{TEAM}/api/contents").json()
    assert NOTEBOOK in [item["name"] for item in contents["content"]]


@pytest.mark.parametrize("stranger", [NLP[0], OUTSIDER], ids=["other-team", "outside-every-team"])
def test_others_get_403_on_the_team_server(hub, stranger):
    client = hub.login(stranger)
    r = client.get(f"/user/{TEAM}/lab", follow_redirects=True)
    assert r.status_code == 403, (r.status_code, str(r.url))
    r = client.post(f"/hub/api/users/{TEAM}/server", headers=_xsrf(client))
    assert r.status_code in (403, 404), r.text
    r = client.get(f"/hub/spawn/{TEAM}")
    assert r.status_code in (403, 404), r.status_code


def test_team_account_cannot_log_in(hub):
    client = httpx.Client(base_url=hub.url, timeout=30)
    client.get("/hub/login")
    r = client.post(
        "/hub/login", data={"username": TEAM, "password": "whatever-it-is", "_xsrf": client.cookies["_xsrf"]}
    )
    assert r.status_code != 302 and "jupyterhub-session-id" not in r.headers.get("set-cookie", "")


def _open_in_lab(page, hub, name: str):
    """Log ``name`` in and open the team server's notebook."""
    from playwright.sync_api import expect

    # To the home page (not on to the member's own server), which links to the team server.
    page.goto(f"{hub.url}/hub/login?next=%2Fhub%2Fhome")
    page.locator("#username_input").fill(name)
    page.locator("#password_input").fill(hub.passwords[name])
    page.locator("#login_submit").click()
    page.wait_for_url("**/hub/home")
    page.locator(f'#team-servers a.team-server[href$="/spawn/{TEAM}"]').click()
    # Started (or already running), the server opens: no "Authorize access" page on the way.
    page.wait_for_url(f"**/user/{TEAM}/lab**", timeout=SPAWN_TIMEOUT * 1000)
    page.goto(f"{hub.url}/user/{TEAM}/lab/tree/{NOTEBOOK}")
    editor = page.locator(".jp-NotebookPanel .jp-CodeCell .jp-InputArea-editor").first
    # The first opening of a shared document loads it into its room: slow on a loaded machine.
    expect(editor).to_contain_text("x = 1", timeout=SPAWN_TIMEOUT * 1000)
    return editor


@pytest.mark.browser
@pytest.mark.slow  # two labs, a stop and a start: over a minute on a loaded machine
def test_two_members_write_one_notebook_and_it_outlives_the_server(browser, hub, output_dir):
    from playwright.sync_api import expect

    alice, bob = VISION[0], VISION[1]
    with lab_page(browser, hub, output_dir, UI_TIMEOUT, name=alice) as page_a:
        editor_a = _open_in_lab(page_a, hub, alice)
        with lab_page(browser, hub, output_dir, UI_TIMEOUT, name=bob) as page_b:
            editor_b = _open_in_lab(page_b, hub, bob)
            editor_a.click()
            page_a.keyboard.press("Control+End")
            page_a.keyboard.press("Enter")
            page_a.keyboard.type(TYPED)
            began = time.monotonic()
            expect(editor_b).to_contain_text(TYPED, timeout=ARRIVAL_TIMEOUT * 1000)
            arrived = time.monotonic() - began
            # Bob's page shows who typed it: alice's hub name on her cursor in his editor.
            flag = page_b.locator(".jp-remote-userFlag-name").filter(has_text=alice)
            expect(flag.first).to_be_attached(timeout=ARRIVAL_TIMEOUT * 1000)
            assert (
                "Anonymous" not in (page_b.locator(".jp-remote-userFlag-name").all_text_contents() or [""])[0]
            )
            page_b.screenshot(path=output_dir / "bob-sees-alice.png")
            print(f"edit arrived in the other page after {arrived:.2f} s")

    # Saved by the server into the team folder, the team group's and group-writable (umask 0002).
    saved = hub.team_folder / NOTEBOOK
    wait_until(lambda: TYPED in saved.read_text(), 30, "the notebook saved in the team folder")
    st = saved.stat()
    assert grp.getgrgid(st.st_gid).gr_name == TEAM and st.st_mode & 0o060 == 0o060, oct(st.st_mode)

    # Stopped and started again by a member: the notebook is still there.
    client = hub.login(alice)
    assert client.delete(f"/hub/api/users/{TEAM}/server", headers=_xsrf(client)).status_code in (202, 204)
    wait_until(lambda: _stopped(hub, TEAM), 60, "the team server to stop")
    assert client.post(f"/hub/api/users/{TEAM}/server", headers=_xsrf(client)).status_code in (201, 202)
    wait_until(lambda: _running(hub, TEAM), SPAWN_TIMEOUT, "the team server to start again")
    assert hub.open_server(client, TEAM).status_code == 200
    model = client.get(f"/user/{TEAM}/api/contents/{NOTEBOOK}").json()
    assert TYPED in "".join(model["content"]["cells"][0]["source"])


@pytest.mark.browser
def test_the_mentor_page_passes_the_accessibility_audit_in_french_and_english(browser, hub, output_dir):
    from playwright.sync_api import expect

    with lab_page(browser, hub, output_dir, UI_TIMEOUT, name="mentor") as page:
        page.goto(f"{hub.url}/hub/login?next=%2Fservices%2Fmentors%2F")
        page.locator("#username_input").fill("t15b-prof")
        page.locator("#password_input").fill(hub.passwords["t15b-prof"])
        page.locator("#login_submit").click()
        page.wait_for_url("**/services/mentors/**")
        for lang, heading in (("fr", "Mes équipes"), ("en", "My teams")):
            page.locator(f"#ailys-languages a[hreflang={lang}]").click()
            expect(page.locator("h1")).to_have_text(heading)
            expect(page.locator("section.team h2").filter(has_text="vision")).to_be_visible()
            assert_accessible(page, f"mentors-{lang}")  # docs/accessibility.md
