"""The assignment loop in Debian's Chromium, as people click it: a learner fetches, edits and
submits in JupyterLab; the instructor opens the course's formgrader from JupyterLab (File > Hub
Control Panel > Services), generates, releases, collects, autogrades, releases feedback; the
learner fetches and opens the feedback, which shows the score and no hidden test.
Screenshots in test-output/<test name>/.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.chromium import lab_page, log_in
from tests.integration.test_grading_formgrader import HIDDEN, grading_hub
from tests.services import free_port
from tests.services.hub import course

pytestmark = [pytest.mark.browser, pytest.mark.hub]

REPO = Path(__file__).resolve().parents[2]
SLUG, LEARNER, PROF, GRADER = "fg-gamma", "fg-dee", "fg-prof-c", "fg-grader-e"
SPAWN_TIMEOUT, UI_TIMEOUT, GRADE_TIMEOUT = 90, 30, 180


@pytest.fixture
def hub():
    courses = [
        course(SLUG, [PROF], [LEARNER], assignments=[{"name": "ps1", "due": "2030-01-01T00:00:00+00:00"}])
    ]
    with grading_hub(courses, GRADER, {SLUG: "ps1"}, free_port()) as running:
        yield running


def formgrader_action(page, glyph: str, output_dir: Path | None = None, name: str = "") -> None:
    """Click a formgrader action (a glyph in the row) and close the success dialog it opens."""
    from playwright.sync_api import expect

    page.locator(f"a:has(.glyphicon-{glyph})").first.click()
    modal = page.locator("#success-modal")
    expect(modal).to_be_visible(timeout=GRADE_TIMEOUT * 1000)
    if output_dir and name:
        page.screenshot(path=str(output_dir / f"{name}.png"))
    modal.locator("button.close, button:has-text('Close')").first.click()
    expect(modal).to_be_hidden()


def open_assignment_list(page):
    from playwright.sync_api import expect

    menu = page.locator(".lm-MenuBar-item").filter(has_text="Nbgrader")
    expect(menu).to_be_visible(timeout=SPAWN_TIMEOUT * 1000)
    menu.click()
    page.locator(".lm-Menu-content .lm-Menu-item:visible").filter(has_text="Assignment List").click()


def test_learner_submits_instructor_grades_learner_reads_feedback(browser, hub, output_dir):
    from playwright.sync_api import expect

    with (
        lab_page(browser, hub, output_dir, UI_TIMEOUT, "instructor") as prof,
        lab_page(browser, hub, output_dir, UI_TIMEOUT, "learner") as dee,
    ):
        # The instructor, in JupyterLab: File > Hub Control Panel, then the course's grading service
        log_in(prof, hub, PROF)
        prof.wait_for_url(f"**/user/{PROF}/lab**", timeout=SPAWN_TIMEOUT * 1000)
        expect(prof.locator(".lm-MenuBar-item").filter(has_text="File")).to_be_visible(
            timeout=SPAWN_TIMEOUT * 1000
        )
        prof.locator(".lm-MenuBar-item").filter(has_text="File").click()
        with prof.context.expect_page() as control_panel:
            prof.locator(".lm-Menu-content .lm-Menu-item:visible").filter(
                has_text="Hub Control Panel"
            ).click()
        home = control_panel.value
        home.wait_for_load_state()
        home.get_by_role("button", name="Services").click()
        home.get_by_role("link", name=f"grading-{SLUG}").click()
        home.wait_for_url(f"**/services/grading-{SLUG}/formgrader/**")
        fg = home
        expect(fg.locator("#main-table")).to_contain_text("ps1", timeout=UI_TIMEOUT * 1000)
        fg.screenshot(path=str(output_dir / "formgrader.png"))
        formgrader_action(fg, "education", output_dir, "generated")
        formgrader_action(fg, "cloud-upload", output_dir, "released")
        expect(fg.locator("#main-table")).to_contain_text("released")

        # The learner fetches, edits the answer, saves and submits, in JupyterLab
        log_in(dee, hub, LEARNER)
        dee.wait_for_url(f"**/user/{LEARNER}/lab**", timeout=SPAWN_TIMEOUT * 1000)
        open_assignment_list(dee)
        released = dee.locator("#released_assignments_list")
        expect(released).to_contain_text("ps1", timeout=UI_TIMEOUT * 1000)
        released.get_by_role("button", name="Fetch").click()
        fetched = dee.locator("#fetched_assignments_list")
        expect(fetched).to_contain_text("ps1")
        dee.goto(f"{hub.url}/user/{LEARNER}/lab/tree/{SLUG}/ps1/ps1.ipynb")
        answer = dee.locator(".jp-CodeCell").filter(has_text="NotImplementedError").locator(".cm-content")
        expect(answer).to_be_visible(timeout=UI_TIMEOUT * 1000)
        answer.click()
        dee.keyboard.press("Control+a")
        dee.keyboard.type("x = 42")
        dee.keyboard.press("Control+s")
        expect(dee.locator(".jp-mod-current .jp-mod-dirty")).to_have_count(0)
        dee.screenshot(path=str(output_dir / "edited.png"))
        open_assignment_list(dee)
        fetched = dee.locator("#fetched_assignments_list")
        expect(fetched).to_contain_text("ps1", timeout=UI_TIMEOUT * 1000)
        fetched.get_by_role("button", name="Submit").click()
        expect(dee.locator("#submitted_assignments_list")).to_contain_text("UTC")

        # The instructor collects, autogrades the submission, generates and releases feedback
        fg.reload()
        formgrader_action(fg, "cloud-download", output_dir, "collected")
        fg.locator("#main-table").get_by_role("link", name="1", exact=True).click()  # the submissions of ps1
        expect(fg.locator("#main-table")).to_contain_text(LEARNER, timeout=UI_TIMEOUT * 1000)
        formgrader_action(fg, "flash", output_dir, "autograded")
        expect(fg.locator("#main-table")).to_contain_text(
            "1 / 3", timeout=UI_TIMEOUT * 1000
        )  # the test passed
        fg.goto(f"{hub.url}/services/grading-{SLUG}/formgrader/manage_assignments")
        expect(fg.locator("#main-table")).to_contain_text("ps1", timeout=UI_TIMEOUT * 1000)
        formgrader_action(fg, "comment", output_dir, "feedback-generated")
        formgrader_action(fg, "envelope", output_dir, "feedback-released")

        # The learner fetches the feedback and opens it
        dee.reload()
        open_assignment_list(dee)
        submitted = dee.locator("#submitted_assignments_list")
        expect(submitted.get_by_role("button", name="Fetch Feedback")).to_be_visible(
            timeout=UI_TIMEOUT * 1000
        )
        submitted.get_by_role("button", name="Fetch Feedback").click()
        view = submitted.get_by_text("(view feedback)")
        expect(view).to_be_visible(timeout=UI_TIMEOUT * 1000)
        view.click()  # the file browser goes to the feedback's folder
        listing = dee.locator("#filebrowser .jp-DirListing-content")
        if not listing.is_visible():  # the file browser's side panel is closed: open it
            dee.locator('.jp-SideBar [data-id="filebrowser"]').click()
        item = listing.locator(".jp-DirListing-item")
        html = item.filter(has=dee.get_by_text("ps1.html", exact=True))
        feedback = item.filter(has=dee.get_by_text("feedback", exact=True))
        # nbgrader's link lands in the feedback's folder, or in the assignment's when the folder was
        # not there yet as it navigated: then go down as the learner would
        expect(html.or_(feedback)).to_be_visible(timeout=UI_TIMEOUT * 1000)
        if not html.is_visible():
            feedback.dblclick()
            expect(item).to_have_count(1)  # the one submission's timestamp folder
            item.first.dblclick()
        expect(html).to_be_visible(timeout=UI_TIMEOUT * 1000)
        html.dblclick()  # JupyterLab's HTML viewer
        frame = dee.frame_locator(".jp-HTMLViewer iframe")
        expect(frame.locator("body")).to_contain_text("Score: 1.0 / 3.0", timeout=UI_TIMEOUT * 1000)
        dee.screenshot(path=str(output_dir / "feedback.png"))
        text = frame.locator("body").inner_text()
        assert HIDDEN not in text and "HIDDEN TESTS" not in text
        assert "assert x == 42" in text
