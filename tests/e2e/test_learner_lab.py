"""A learner's first session, in a real browser: log in, land in JupyterLab, open the course's
starter notebook, run a cell and read its output.

Debian's Chromium driven by Playwright (never a downloaded browser), against a real hub and
proxy on loopback. A screenshot of the lab (and, on failure, of the page as it was) goes to
test-output/<test name>/. The browser fixture is in conftest.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.chromium import lab_page, log_in
from tests.services.hub import RunningHub, course

pytestmark = [pytest.mark.browser, pytest.mark.hub]

REPO = Path(__file__).resolve().parents[2]
SLUG = "frugal-ml"
NOTEBOOK = "01-premiers-pas.ipynb"
LEARNER = "gaby"  # a real Unix account under a root hub: a name no other test uses
GREETING = "Bonjour, AILyS !"

# Seconds. Spawning is a few seconds here; the margins are for a loaded CI machine.
SPAWN_TIMEOUT = 90
UI_TIMEOUT = 30
KERNEL_TIMEOUT = 60


@pytest.fixture
def hub():
    material = (REPO / "courses" / SLUG / "material" / NOTEBOOK).read_text(encoding="utf-8")
    running = RunningHub([course(SLUG, ["prof-gaby"], [LEARNER])], materials={SLUG: {NOTEBOOK: material}})
    try:
        yield running.start()
    finally:
        running.stop()


def test_learner_logs_in_opens_the_starter_notebook_and_runs_a_cell(browser, hub, output_dir):
    from playwright.sync_api import expect

    with lab_page(browser, hub, output_dir, UI_TIMEOUT) as page:
        log_in(page, hub, LEARNER)

        # The hub spawns the server and sends the browser on to JupyterLab.
        page.wait_for_url(f"**/user/{LEARNER}/lab**", timeout=SPAWN_TIMEOUT * 1000)
        listing = page.locator("#filebrowser .jp-DirListing-content")
        course_folder = listing.locator(".jp-DirListing-item").filter(has=page.get_by_text(SLUG, exact=True))
        expect(course_folder).to_be_visible(timeout=SPAWN_TIMEOUT * 1000)

        # The course folder holds the starter notebook.
        course_folder.dblclick()
        expect(page.locator("#filebrowser .jp-BreadCrumbs")).to_contain_text(SLUG)
        starter = listing.locator(".jp-DirListing-item").filter(has=page.get_by_text(NOTEBOOK, exact=True))
        expect(starter).to_be_visible()
        starter.dblclick()

        # It opens in a notebook tab, with its kernel.
        notebook = page.locator(".jp-NotebookPanel")
        expect(page.locator(".lm-TabBar-tab.jp-mod-current").filter(has_text=NOTEBOOK)).to_be_visible()
        expect(notebook.locator(".jp-MarkdownCell").first).to_contain_text("Apprentissage automatique frugal")
        # Wait, as a learner would, for the status bar to say the kernel is idle. A cell run
        # before that is silently dropped: no counter, no output (jupyterlab/jupyterlab#8490);
        # and while the toolbar still says "No Kernel", JupyterLab may start another kernel or
        # ask which one to use.
        expect(notebook.locator(".jp-NotebookPanel-toolbar .jp-Toolbar-kernelName")).to_have_text(
            "Python 3 (ipykernel)", timeout=KERNEL_TIMEOUT * 1000
        )
        expect(page.locator("#jp-main-statusbar")).to_contain_text(
            "Python 3 (ipykernel) | Idle", timeout=KERNEL_TIMEOUT * 1000
        )

        # Select the greeting cell and run it as a learner would, with Shift+Enter.
        greeting_cell = notebook.locator(".jp-CodeCell").filter(has_text=f'print("{GREETING}")')
        expect(greeting_cell).to_have_count(1)
        greeting_cell.locator(".jp-InputPrompt").click()
        expect(greeting_cell).to_contain_class("jp-mod-selected")
        page.keyboard.press("Shift+Enter")

        output = greeting_cell.locator(".jp-OutputArea-output")
        expect(output).to_have_text(GREETING, timeout=KERNEL_TIMEOUT * 1000)
        expect(greeting_cell.locator(".jp-InputPrompt")).to_contain_text("[1]")
        page.screenshot(path=output_dir / "lab.png")
