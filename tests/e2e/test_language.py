"""French and English on every page, in a real browser against one real hub (docs/languages.md).

A French-reading learner whose browser asks for English switches the login page to French, then
meets French everywhere: home, the launch form, the page shown while the server starts, their
JupyterLab's menus, an error page, the gallery and the footprint page; the choice holds after
logging out, and on another browser (kept with the user). An English-reading learner whose
browser asks for French does the same in English.
"""

from __future__ import annotations

import pytest

from tests.e2e.a11y import assert_accessible
from tests.e2e.chromium import lab_page
from tests.services.hub import RunningHub, course

pytestmark = [pytest.mark.browser, pytest.mark.hub]

FRENCH, ENGLISH = "i16-ana", "i16-ben"  # Unix accounts under a root hub: this module's prefix
# Seconds: waits for conditions, generous for a loaded 2-core machine.
SPAWN_TIMEOUT = 90
UI_TIMEOUT = 30

# A launch form on this local site too (the Slurm and container sites have theirs), so the hub's
# spawn page is shown: its heading and button are ours, the form's inside is the spawner's.
OPTIONS_FORM = "c.Spawner.options_form = '<p id=\"i16-form\">AILyS</p>'\n"

# What a person reads first on each page, in each language.
WORDS = {
    "login": {"fr": "Nom d'utilisateur", "en": "Username:"},
    "home": {"fr": "Démarrer mon serveur", "en": "Start my server"},
    "spawn": {"fr": "Lancer votre serveur", "en": "Launch your server"},
    "pending": {"fr": "Votre serveur démarre", "en": "Your server is starting"},
    "error": {"fr": "Cette page n'existe pas", "en": "This page does not exist"},
    "gallery": {"fr": "Galerie de démos", "en": "Demo gallery"},
    "footprint": {"fr": "Mon empreinte", "en": "My footprint"},
    "lab_menu": {"fr": ("Fichier", "Noyau"), "en": ("File", "Kernel")},
}


@pytest.fixture(scope="module")
def hub():
    running = RunningHub([course("i16-langues", ["i16-prof"], [FRENCH, ENGLISH])])
    (running.data / "jupyterhub_config.d" / "60-i16-options-form.py").write_text(OPTIONS_FORM)
    try:
        yield running.start()
    finally:
        running.stop()


def expect_words(page, what: str, lang: str) -> None:
    from playwright.sync_api import expect

    wait = UI_TIMEOUT * 1000  # Playwright's own default (5 s) is short for a loaded machine
    expect(page.locator("body")).to_contain_text(WORDS[what][lang], timeout=wait)
    other = "en" if lang == "fr" else "fr"
    expect(page.locator("body")).not_to_contain_text(WORDS[what][other], timeout=wait)
    assert page.evaluate("document.documentElement.lang") == lang, f"{what}: <html lang> is not {lang}"
    assert_accessible(page, f"{what}-{lang}")  # each of our pages, in each language (docs/accessibility.md)


def log_in(page, hub, name: str) -> None:
    page.locator("#username_input").fill(name)
    page.locator("#password_input").fill(hub.passwords[name])
    page.locator("#login_submit").click()


def hold_progress(route) -> None:
    route.fulfill(status=200, content_type="text/event-stream", body="")


def launch_and_open_lab(page, hub, name: str, lang: str) -> None:
    """Home -> launch form -> the page shown while the server starts -> JupyterLab, each in ``lang``."""
    from playwright.sync_api import expect

    page.goto(f"{hub.url}/hub/home")
    expect_words(page, "home", lang)
    page.locator("#start").click()
    page.wait_for_url("**/hub/spawn**")
    expect(page.locator("#i16-form")).to_be_visible(timeout=UI_TIMEOUT * 1000)
    expect_words(page, "spawn", lang)
    # The progress stream answers nothing until the page is checked: it stays on its progress bar.
    page.route("**/server/progress**", hold_progress)
    page.locator("#spawn_form button[type=submit]").click()
    page.wait_for_url(f"**/hub/spawn-pending/{name}**")
    expect_words(page, "pending", lang)
    page.unroute("**/server/progress**", hold_progress)  # the browser's next try gets the real one
    page.wait_for_url(f"**/user/{name}/lab**", timeout=SPAWN_TIMEOUT * 1000)
    menus = page.locator("#jp-menu-panel .lm-MenuBar-itemLabel")
    for label in WORDS["lab_menu"][lang]:
        expect(menus.filter(has_text=label).first).to_be_visible(timeout=SPAWN_TIMEOUT * 1000)
    assert page.evaluate("document.documentElement.lang").startswith(lang)


def services_and_errors(page, hub, lang: str) -> None:
    page.goto(f"{hub.url}/hub/no-such-page")
    expect_words(page, "error", lang)
    page.goto(f"{hub.url}/services/gallery/")
    expect_words(page, "gallery", lang)
    page.goto(f"{hub.url}/services/footprint/")
    page.wait_for_url("**/services/footprint/**")
    expect_words(page, "footprint", lang)


def test_a_french_reader_switches_to_french_once_and_keeps_it_everywhere(browser, hub, output_dir):
    from playwright.sync_api import expect

    with lab_page(browser, hub, output_dir, UI_TIMEOUT, name="french", locale="en-US") as page:
        page.goto(f"{hub.url}/hub/login")
        expect_words(page, "login", "en")  # the browser's language first
        page.locator("#ailys-languages a[hreflang=fr]").click()
        expect_words(page, "login", "fr")
        expect(page.locator("#login_submit")).to_have_value("Connexion", timeout=UI_TIMEOUT * 1000)
        log_in(page, hub, FRENCH)
        page.wait_for_url("**/hub/**")
        launch_and_open_lab(page, hub, FRENCH, "fr")
        page.screenshot(path=output_dir / "lab-fr.png")
        services_and_errors(page, hub, "fr")
        page.goto(f"{hub.url}/hub/logout")  # back to the login page, still in French
        page.wait_for_url("**/hub/login**")
        expect_words(page, "login", "fr")

    # Another browser, asking for English: the hub kept the choice with the user.
    with lab_page(browser, hub, output_dir, UI_TIMEOUT, name="french-elsewhere", locale="en-US") as page:
        page.goto(f"{hub.url}/hub/login")
        expect_words(page, "login", "en")  # not known yet: nobody is logged in
        log_in(page, hub, FRENCH)
        page.wait_for_url("**/user/**", timeout=SPAWN_TIMEOUT * 1000)  # the server still runs
        page.goto(f"{hub.url}/hub/home")
        expect(page.locator("#start")).to_contain_text("Mon serveur", timeout=UI_TIMEOUT * 1000)
        assert page.evaluate("document.documentElement.lang") == "fr"
        page.goto(f"{hub.url}/services/gallery/")  # the services follow the kept choice too
        expect_words(page, "gallery", "fr")


def test_an_english_reader_with_a_french_browser_gets_english_everywhere(browser, hub, output_dir):
    with lab_page(browser, hub, output_dir, UI_TIMEOUT, name="english", locale="fr-FR") as page:
        page.goto(f"{hub.url}/hub/login")
        expect_words(page, "login", "fr")  # the browser's language first
        page.locator("#ailys-languages a[hreflang=en]").click()
        expect_words(page, "login", "en")
        log_in(page, hub, ENGLISH)
        page.wait_for_url("**/hub/**")
        launch_and_open_lab(page, hub, ENGLISH, "en")
        services_and_errors(page, hub, "en")
        page.goto(f"{hub.url}/hub/logout")  # back to the login page: remembered by this browser
        page.wait_for_url("**/hub/login**")
        expect_words(page, "login", "en")
