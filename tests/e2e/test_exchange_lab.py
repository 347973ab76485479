"""A learner's Assignments panel in JupyterLab, in Debian's Chromium: the released assignment of
their course shows, they fetch it, submit it and see the submission; nbgrader's instructor tools
are not in their menus."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import httpx
import nbformat
import pytest

from hub_config.appliers.exchange import ACCESS
from hub_config.appliers.spawner import LEARNER_JUPYTER_CONFIG
from tests.e2e.chromium import lab_page, log_in
from tests.integration.test_exchange import exchange_client, wait_for_exchange
from tests.services.hub import RunningHub, course, hub_xsrf

pytestmark = [pytest.mark.browser, pytest.mark.hub]

SLUG, LEARNER, PROF = "exa-optim", "exa-dan", "exa-prof-c"
SPAWN_TIMEOUT, UI_TIMEOUT = 90, 30
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def hub():
    shutil.copytree(
        REPO / "spawners" / "jupyter-config" / "learner", LEARNER_JUPYTER_CONFIG, dirs_exist_ok=True
    )
    running = RunningHub([course(SLUG, [PROF], [LEARNER], assignments=[{"name": "tp1"}])])
    try:
        running.start()
        wait_for_exchange(running)
        yield running
    finally:
        running.stop()


def release_as_instructor(hub: RunningHub) -> httpx.Client:
    client = hub.login(PROF)
    r = client.post(
        f"/hub/api/users/{PROF}/tokens",
        json={"scopes": [ACCESS]},
        headers=hub_xsrf(client),
    )
    token = r.json()["token"]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = None  # à compléter", id="c1")])
    files = {"tp1.ipynb": base64.b64encode(nbformat.writes(nb).encode()).decode()}
    url = f"http://127.0.0.1:{hub.catalogue.site.exchange.port}/services/exchange/api/courses/{SLUG}/assignments/tp1"
    r = httpx.put(url, json={"files": files}, headers={"Authorization": f"token {token}"})
    assert r.status_code == 201, r.text
    return exchange_client(hub, token)


def test_learner_fetches_and_submits_from_the_assignments_panel(browser, hub, output_dir):
    from playwright.sync_api import expect

    exchange = release_as_instructor(hub)
    with lab_page(browser, hub, output_dir, UI_TIMEOUT) as page:
        log_in(page, hub, LEARNER)
        page.wait_for_url(f"**/user/{LEARNER}/lab**", timeout=SPAWN_TIMEOUT * 1000)

        menu = page.locator(".lm-MenuBar-item").filter(has_text="Nbgrader")
        expect(menu).to_be_visible(timeout=SPAWN_TIMEOUT * 1000)
        menu.click()
        items = page.locator(".lm-Menu-content .lm-Menu-item:visible")
        expect(items.filter(has_text="Assignment List")).to_be_visible()
        assert not [t for t in items.all_inner_texts() if "Formgrader" in t or "Course List" in t]
        items.filter(has_text="Assignment List").click()

        released = page.locator("#released_assignments_list")
        expect(released).to_contain_text("tp1", timeout=UI_TIMEOUT * 1000)
        page.screenshot(path=str(output_dir / "released.png"))
        released.get_by_role("button", name="Fetch").click()
        fetched = page.locator("#fetched_assignments_list")
        expect(fetched).to_contain_text("tp1")
        fetched.get_by_role("button", name="Submit").click()
        submitted = page.locator("#submitted_assignments_list")
        expect(submitted).to_contain_text("tp1")
        expect(submitted).to_contain_text("UTC")
        page.screenshot(path=str(output_dir / "submitted.png"))

        # A broken notebook: the panel says which file and why, and the first submission stays
        notebook = hub.data / "homes" / LEARNER / SLUG / "tp1" / "tp1.ipynb"
        notebook.write_text('{"cells": [' + notebook.read_text())  # as an editor outside Jupyter might
        fetched.get_by_role("button", name="Submit").click()
        dialog = page.locator(".jp-Dialog").filter(has_text="Invalid Submission")
        expect(dialog).to_contain_text("tp1.ipynb: not a valid notebook: invalid JSON")
        expect(dialog).to_contain_text("nothing was stored")
        page.screenshot(path=str(output_dir / "refused.png"))
        dialog.get_by_role("button", name="Ok").click()
        assert len(exchange.get(f"courses/{SLUG}/submissions").json()["submissions"]) == 1
