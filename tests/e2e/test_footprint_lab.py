"""The footprint in a real browser: the learner's JupyterLab status bar shows the session's
energy (the @ailys/footprint extension, built by `make deps`), and the figure moves while a cell
computes; the learner opens their footprint page; an instructor opens the course's page and its plot."""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from tests.conftest import need
from tests.e2e.a11y import assert_accessible
from tests.e2e.chromium import lab_page, log_in
from tests.services.hub import RunningHub, course

pytestmark = [pytest.mark.browser, pytest.mark.hub]

SLUG = "fpt-green"
LEARNER, PROF = "fpt-lea", "fpt-teach"
NOTEBOOK = "busy.ipynb"
BUSY_CELL = "import time\nt = time.process_time()\nwhile time.process_time() - t < 15: pass\nprint('done')"


def notebook() -> str:
    cell = {"cell_type": "code", "execution_count": None, "id": "busy", "metadata": {}, "outputs": []}
    nb = {"cells": [{**cell, "source": BUSY_CELL}], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    nb["metadata"]["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    return json.dumps(nb)


@pytest.fixture
def hub():
    import sys
    from pathlib import Path

    built = Path(sys.prefix) / "share/jupyter/labextensions/@ailys/footprint/package.json"
    need(built.exists(), f"the status-bar extension is not built ({built}): make deps")
    running = RunningHub(
        [course(SLUG, [PROF], [LEARNER])],
        materials={SLUG: {NOTEBOOK: notebook()}},
        site={"energy": {"service": {"sample_every": "1s"}}},
    )
    try:
        yield running.start()
    finally:
        running.stop()


def test_the_status_bar_figure_moves_while_a_cell_computes(browser, hub, output_dir):
    from playwright.sync_api import expect

    with lab_page(browser, hub, output_dir, 30, name="learner") as page:
        log_in(page, hub, LEARNER)
        page.wait_for_url(f"**/user/{LEARNER}/lab**", timeout=90_000)
        item = page.locator(".ailys-footprint")
        expect(item).to_contain_text("Wh", timeout=60_000)
        first = float(item.get_attribute("data-wh"))
        page.goto(f"{hub.url}/user/{LEARNER}/lab/tree/{SLUG}/{NOTEBOOK}")
        notebook = page.locator(".jp-NotebookPanel")
        expect(page.locator("#jp-main-statusbar")).to_contain_text(
            "Python 3 (ipykernel) | Idle", timeout=60_000
        )
        notebook.locator(".jp-CodeCell .jp-InputPrompt").first.click()
        page.keyboard.press("Shift+Enter")
        expect(page.locator("#jp-main-statusbar")).to_contain_text("Busy", timeout=30_000)
        # While the cell still computes, the figure grows (service samples each second, the
        # extension asks every 10 s).
        page.wait_for_function(
            f"() => parseFloat(document.querySelector('.ailys-footprint').dataset.wh) > {first} * 1.2",
            timeout=40_000,
        )
        page.screenshot(path=output_dir / "status-bar.png")
        moved = float(item.get_attribute("data-wh"))
        assert moved > first

        # The walltime warning: the service's answer, as for a Slurm session 10 minutes from its
        # end (local sessions have no walltime), read by the real extension in the real lab.
        def near_the_end(route):
            answer = json.loads(route.fetch().text())
            ends = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=10, seconds=-3)
            for session in answer["sessions"]:
                session["ends"] = ends.isoformat()
            route.fulfill(json=answer)

        page.route("**/services/footprint/api/me", near_the_end)
        page.reload()
        expect(
            page.locator(".jp-Notification-Toast-warning, .Toastify__toast").filter(has_text="save your work")
        ).to_contain_text("Your session ends in 10 minutes", timeout=60_000)
        page.screenshot(path=output_dir / "walltime-warning.png")
        page.unroute("**/services/footprint/api/me")
        page.goto(f"{hub.url}/services/footprint/?lang=en")
        expect(page.locator("h1")).to_have_text("My footprint")
        expect(page.locator("#running")).to_contain_text(SLUG)
        page.screenshot(path=output_dir / "my-footprint.png")
        assert_accessible(page, "footprint-me-en")

    with lab_page(browser, hub, output_dir, 30, name="instructor") as page:
        log_in(page, hub, PROF)
        page.wait_for_url("**/user/**", timeout=90_000)
        page.goto(f"{hub.url}/services/footprint/course/{SLUG}?lang=en")
        expect(page.locator("h1")).to_contain_text("Footprint of")
        expect(page.locator("#learners")).to_be_visible()
        start = time.monotonic()
        page.wait_for_function("() => document.querySelector('img').naturalWidth > 0", timeout=30_000)
        print(f"course plot drawn in {time.monotonic() - start:.1f} s")
        page.screenshot(path=output_dir / "course.png")
        assert_accessible(page, "footprint-course-en")
