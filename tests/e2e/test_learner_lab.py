"""A learner's first session, in a real browser: log in, land in JupyterLab, open the course's
starter notebook, run a cell and read its output.

Debian's Chromium driven by Playwright (never a downloaded browser), against a real hub and
proxy on loopback. A screenshot of the lab (and, on failure, of the page as it was) goes to
test-output/<test name>/.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import need
from tests.services.hub import RunningHub, course

pytestmark = [pytest.mark.browser, pytest.mark.hub]

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
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
def browser():
    need(
        shutil.which(CHROMIUM) is not None,
        f"Debian's Chromium is not at {CHROMIUM}: apt-get install chromium",
    )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        need(False, "Playwright for Python is not installed (make test-deps)")
    with sync_playwright() as playwright:
        # Playwright starts it with a fresh, temporary --user-data-dir of its own.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def hub():
    material = (REPO / "courses" / SLUG / "material" / NOTEBOOK).read_text(encoding="utf-8")
    running = RunningHub([course(SLUG, ["prof-gaby"], [LEARNER])], materials={SLUG: {NOTEBOOK: material}})
    try:
        yield running.start()
    finally:
        running.stop()


def dismiss_first_run_prompts(page) -> None:
    """Answer JupyterLab's prompts that may cover what the test clicks, whenever they show up.

    Playwright runs a handler just before an action when its locator is visible, so a prompt
    that appears late (the news toast comes a few seconds after the lab) cannot steal a click.
    """
    news = page.locator(".Toastify__toast").filter(has_text="Jupyter news")
    page.add_locator_handler(news, lambda toast: toast.get_by_role("button", name="No", exact=True).click())
    # Only if the notebook's kernel were unknown; its metadata names python3, so not expected.
    kernel_dialog = page.locator(".jp-Dialog").filter(has_text="Select Kernel")
    page.add_locator_handler(
        kernel_dialog, lambda dialog: dialog.locator(".jp-Dialog-footer button.jp-mod-accept").click()
    )


def test_learner_logs_in_opens_the_starter_notebook_and_runs_a_cell(browser, hub, output_dir):
    from playwright.sync_api import expect

    context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
    page = context.new_page()
    page.set_default_timeout(UI_TIMEOUT * 1000)
    console = []
    page.on("console", lambda msg: console.append(f"{msg.type}: {msg.text}"))
    dismiss_first_run_prompts(page)
    try:
        # The hub's login form, as a learner fills it.
        page.goto(f"{hub.url}/hub/login")
        page.locator("#username_input").fill(LEARNER)
        page.locator("#password_input").fill(hub.passwords[LEARNER])
        page.locator("#login_submit").click()

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
    except Exception:
        try:
            page.screenshot(path=output_dir / "failure.png")
        except Exception as e:  # never hide the test's own failure behind this one
            print(f"no failure screenshot: {e}")
        raise
    finally:
        (output_dir / "browser-console.log").write_text("\n".join(console) + "\n")
        (output_dir / "hub.log").write_text(hub.log())
        context.close()
