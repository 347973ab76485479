"""Accessibility in a real browser (docs/accessibility.md): every demo page passes axe-core in
French and in English and its plot says what it shows; a learner does everything with the keyboard
alone (log in, launch, open a notebook and run a cell, move a demo's slider); JupyterLab and
JupyterHub's admin page are audited too, their results saved under test-output/a11y/.

The other pages (login, home, launch form, progress page, errors, gallery, footprint, invitation)
are audited by the browser tests that already reach them (test_language.py, ...).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from tests.e2e.a11y import assert_accessible, audit
from tests.e2e.chromium import lab_page
from tests.services.hub import RunningHub, course

pytestmark = [pytest.mark.browser, pytest.mark.hub]

REPO = Path(__file__).resolve().parents[2]
FRUGAL = REPO / "courses" / "frugal-ml"
DEMOS = yaml.safe_load((FRUGAL / "course.yaml").read_text(encoding="utf-8"))["demos"]
SLUG = "a11y-ml"
LEARNER, PROF = "a11y-ana", "a11y-prof"  # Unix accounts under a root hub: this module's prefix
NOTEBOOK = "01-premiers-pas.ipynb"
GREETING = "Bonjour, AILyS !"
# Seconds: waits for conditions, generous for a loaded 2-core machine.
SPAWN_TIMEOUT = 90
UI_TIMEOUT = 30
KERNEL_TIMEOUT = 60
# Words of each plot's text alternative, in French and in English (each demo's TEXT["alt"]).
ALT_WORDS = {
    "decision-boundary": ("Le plan coloré", "The plane coloured"),
    "model-complexity": ("À gauche", "Left:"),
    "fairness-threshold": ("Barres au seuil", "Bars at threshold"),
    "accuracy-energy": ("selon le nombre d'arbres", "against the number of trees"),
}


@pytest.fixture(scope="module")
def hub():
    material = (FRUGAL / "material" / NOTEBOOK).read_text(encoding="utf-8")
    running = RunningHub(
        [course(SLUG, [PROF], [LEARNER], demos=DEMOS)], materials={SLUG: {NOTEBOOK: material}}
    )
    folder = running.root / "courses" / SLUG / "demos"
    folder.mkdir()
    for demo in DEMOS:
        shutil.copy(FRUGAL / "demos" / demo["notebook"], folder / demo["notebook"])
    running.start()
    try:
        running.wait_for_gallery(len(DEMOS), 180)
        yield running
    finally:
        running.stop()


def demo_url(hub, notebook: str) -> str:
    return f"{hub.url}/services/gallery/demo/{SLUG}/{notebook.removesuffix('.ipynb')}"


def plot_alt(page) -> str:
    from playwright.sync_api import expect

    plot = page.locator(".widget-output img").first
    expect(plot).to_be_visible(timeout=UI_TIMEOUT * 1000)
    return plot.get_attribute("alt") or ""


def test_every_demo_page_passes_the_audit_and_its_plot_says_what_it_shows(browser, hub, output_dir):
    from playwright.sync_api import expect

    with lab_page(browser, hub, output_dir, UI_TIMEOUT, name="demos", locale="fr-FR") as page:
        # One demo is for the course's members: log in first (then to the gallery, no server).
        page.goto(f"{hub.url}/hub/login?next=/services/gallery/")
        page.locator("#username_input").fill(LEARNER)
        page.locator("#password_input").fill(hub.passwords[LEARNER])
        page.locator("#login_submit").click()
        page.wait_for_url("**/services/gallery/**")
        for demo in DEMOS:
            name = demo["notebook"].removesuffix(".ipynb")
            page.goto(demo_url(hub, demo["notebook"]))
            fr, en = ALT_WORDS[name]
            french = plot_alt(page)
            assert fr in french, f"{name}: the plot's text alternative in French: {french!r}"
            assert_accessible(page, f"demo-{name}-fr")
            page.get_by_role("button", name="English").click()
            page.wait_for_function(
                "(s) => document.querySelector('.widget-output img')?.alt !== s", arg=french
            )
            english = plot_alt(page)
            assert en in english, f"{name}: the plot's text alternative in English: {english!r}"
            assert_accessible(page, f"demo-{name}-en")

        # The text alternative follows the sliders.
        page.goto(demo_url(hub, "decision-boundary.ipynb"))
        before = plot_alt(page)
        assert "k = 15" in before, before
        slider = page.locator(".widget-slider").filter(has_text="Voisins k")
        for _ in range(10):
            slider.locator(".noUi-handle").press("ArrowLeft")
        page.wait_for_function(
            "() => document.querySelector('.widget-output img')?.alt.includes('k = 5')",
            timeout=UI_TIMEOUT * 1000,
        )
        expect(page.locator(".widget-output img").first).to_have_attribute("alt", before.replace("15", "5"))


def tab_to(page, condition: str, presses: int = 40) -> None:
    """Press Tab until the focused element meets ``condition`` (a JavaScript test of ``el``)."""
    for _ in range(presses):
        if page.evaluate(f"(() => {{ const el = document.activeElement; return !!({condition}); }})()"):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"{presses} presses of Tab never reached {condition} ({page.url})")


def test_a_learner_does_everything_with_the_keyboard_alone(browser, hub, output_dir):
    from playwright.sync_api import expect

    with lab_page(browser, hub, output_dir, UI_TIMEOUT, name="keyboard", locale="en-US") as page:
        # Log in: the name field has the focus on arrival.
        page.goto(f"{hub.url}/hub/login?next=/hub/home")
        expect(page.locator("#username_input")).to_be_focused()
        page.keyboard.type(LEARNER)
        page.keyboard.press("Tab")
        expect(page.locator("#password_input")).to_be_focused()
        page.keyboard.type(hub.passwords[LEARNER])
        page.keyboard.press("Enter")

        # Launch the course's server from home.
        page.wait_for_url(f"{hub.url}/hub/home")
        expect(page.locator("#start")).to_be_visible()
        tab_to(page, "el.id === 'start'")
        page.keyboard.press("Enter")
        page.wait_for_url(f"**/user/{LEARNER}/lab**", timeout=SPAWN_TIMEOUT * 1000)
        expect(page.locator("#filebrowser")).to_be_visible(timeout=SPAWN_TIMEOUT * 1000)

        # Open the starter notebook from the command palette, by its path.
        page.keyboard.press("Control+Shift+C")
        palette = page.locator(".lm-CommandPalette-input")
        expect(palette).to_be_focused()
        page.keyboard.type("Open from Path")
        page.keyboard.press("Enter")
        path = page.locator(".jp-Dialog input")
        expect(path).to_be_focused()
        page.keyboard.type(f"{SLUG}/{NOTEBOOK}")
        page.keyboard.press("Enter")
        notebook = page.locator(".jp-NotebookPanel")
        expect(page.locator(".lm-TabBar-tab.jp-mod-current").filter(has_text=NOTEBOOK)).to_be_visible()
        expect(page.locator("#jp-main-statusbar")).to_contain_text(
            "Python 3 (ipykernel) | Idle", timeout=KERNEL_TIMEOUT * 1000
        )

        # Down to the greeting cell in command mode, and run it.
        page.keyboard.press("Escape")
        greeting = notebook.locator(".jp-CodeCell").filter(has_text=f'print("{GREETING}")')
        for _ in range(30):
            if "jp-mod-active" in (greeting.get_attribute("class") or ""):
                break
            page.keyboard.press("ArrowDown")
        expect(greeting).to_contain_class("jp-mod-active")
        page.keyboard.press("Shift+Enter")
        expect(greeting.locator(".jp-OutputArea-output")).to_have_text(
            GREETING, timeout=KERNEL_TIMEOUT * 1000
        )
        page.screenshot(path=output_dir / "notebook.png")
        audit(page, "jupyterlab-notebook")  # upstream's: listed in docs/accessibility.md, not asserted

        # A demo's slider, reached with Tab and moved with the arrow keys.
        page.goto(demo_url(hub, "decision-boundary.ipynb"))
        plot = page.locator(".widget-output img").first
        expect(plot).to_be_visible()
        before = plot.get_attribute("src")
        tab_to(
            page,
            "el.classList.contains('noUi-handle') && "
            "el.closest('.widget-slider').querySelector('.widget-label').textContent === 'Voisins k'",
        )
        for _ in range(10):
            page.keyboard.press("ArrowLeft")
        expect(page.locator(".widget-slider").filter(has_text="Voisins k")).to_contain_text("5")
        page.wait_for_function(
            "(s) => document.querySelector('.widget-output img').src !== s",
            arg=before,
            timeout=UI_TIMEOUT * 1000,
        )


def test_the_admin_page_is_audited_and_our_parts_of_it_pass_in_both_themes(browser, hub, output_dir):
    from playwright.sync_api import expect

    with lab_page(browser, hub, output_dir, UI_TIMEOUT, name="admin") as page:
        # The hub's dark theme (the browser's preference) keeps its contrast too.
        page.emulate_media(color_scheme="dark")
        page.goto(f"{hub.url}/hub/login?next=/hub/admin")
        expect(page.locator("html")).to_have_attribute("data-bs-theme", "dark")
        assert_accessible(page, "login-dark-en")
        page.emulate_media(color_scheme="light")
        page.reload()
        expect(page.locator("html")).to_have_attribute("data-bs-theme", "light")
        page.locator("#username_input").fill("hubadmin")
        page.locator("#password_input").fill(hub.passwords["hubadmin"])
        page.locator("#login_submit").click()
        page.wait_for_url("**/hub/admin**")
        expect(page.get_by_text(LEARNER).first).to_be_visible()  # the React table is drawn
        audit(page, "admin")  # JupyterHub's React page: listed in docs/accessibility.md, not asserted
        assert_accessible(page, "admin-language-switch", within="#ailys-languages")
