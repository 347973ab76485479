"""The demo gallery in a real browser: a visitor with no account opens a public demo from the
hub's landing page and plays with it; a private demo sends them to the login page."""

from __future__ import annotations

import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.e2e.chromium import lab_page
from tests.services.hub import RunningHub, course

pytestmark = [pytest.mark.browser, pytest.mark.hub]

DEMOS = Path(__file__).resolve().parents[2] / "courses" / "frugal-ml" / "demos"
UI_TIMEOUT = 30
TITLE_FR = "Frontière de décision"


@pytest.fixture(scope="module")
def hub():
    demos = [
        {
            "notebook": "decision-boundary.ipynb",
            "title": {"fr": TITLE_FR, "en": "Decision boundary"},
            "public": True,
        },
        {"notebook": "model-complexity.ipynb", "title": {"fr": "Complexité", "en": "Complexity"}},
    ]
    running = RunningHub([course("gal-e2e", ["gal-e2e-prof"], ["gal-e2e-ana"], demos=demos)])
    folder = running.root / "courses" / "gal-e2e" / "demos"
    folder.mkdir()
    for demo in demos:
        shutil.copy(DEMOS / demo["notebook"], folder / demo["notebook"])
    running.start()
    try:
        running.wait_for_gallery(2, 120)
        yield running
    finally:
        running.stop()


def test_a_visitor_opens_a_public_demo_from_the_landing_page_and_moves_a_slider(browser, hub, output_dir):
    from playwright.sync_api import expect

    # A French browser: the login page lists the public demos by their French titles (docs/languages.md).
    with lab_page(browser, hub, output_dir, UI_TIMEOUT, locale="fr-FR") as page:
        elsewhere = []  # every request must stay on this site (no CDN, loopback only)
        page.on("request", lambda r: urlparse(r.url).hostname != "127.0.0.1" and elsewhere.append(r.url))
        page.goto(f"{hub.url}/")
        page.wait_for_url("**/hub/login**")
        page.locator("a.ailys-public-demo", has_text=TITLE_FR).click()
        page.wait_for_url("**/services/gallery/demo/gal-e2e/decision-boundary")

        plot = page.locator(".widget-output img").first
        expect(plot).to_be_visible()
        slider = page.locator(".widget-slider").filter(has_text="Voisins k")
        expect(slider).to_be_visible()
        before = plot.get_attribute("src")
        page.screenshot(path=output_dir / "demo-before.png")

        handle = slider.locator(".noUi-handle")
        handle.focus()
        for _ in range(10):
            handle.press("ArrowLeft")  # k from 15 towards 5: a visibly wigglier boundary
        expect(slider).to_contain_text("5")
        page.wait_for_function(
            "(s) => document.querySelector('.widget-output img').src !== s",
            arg=before,
            timeout=UI_TIMEOUT * 1000,
        )
        page.screenshot(path=output_dir / "demo-after.png")

        # The language toggle switches the texts to English.
        page.get_by_role("button", name="English").click()
        expect(page.locator(".widget-slider").filter(has_text="Neighbours k")).to_be_visible()
        assert elsewhere == []


def test_a_private_demo_sends_an_anonymous_visitor_to_the_login_page(browser, hub, output_dir):
    from playwright.sync_api import expect

    with lab_page(browser, hub, output_dir, UI_TIMEOUT) as page:
        page.goto(f"{hub.url}/services/gallery/demo/gal-e2e/model-complexity")
        page.wait_for_url("**/hub/login**")
        expect(page.locator("#login_submit")).to_be_visible()
        assert "next=" in page.url  # and comes back to the demo after logging in
