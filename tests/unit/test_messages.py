"""The message catalogue (hub_config/i18n.py): every message of our templates and Python has a
French and an English translation, and pages speak the visitor's language."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po
from jupyterhub._data import DATA_FILES_PATH

from hub_config import i18n
from hub_config.login.rules import window_message
from hub_config.roster import Closed

REPO = Path(__file__).resolve().parents[2]


def extracted() -> dict[str, str]:
    """Every message babel finds with the project's babel.cfg (as `make messages` does): id -> where."""
    with open(REPO / "babel.cfg") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = {}
    for filename, line, message, *_ in extract_from_dir(REPO, method_map, options_map):
        msgid = message[0] if isinstance(message, tuple) else message
        found.setdefault(msgid, f"{filename}:{line}")
    return found


def test_messages_are_found_in_templates_and_python():
    found = extracted()
    assert any(where.startswith("hub_config/templates/invitation.html") for where in found.values())
    assert any(where.startswith("hub_config/templates/invitation-mail.txt") for where in found.values())
    assert any(where.startswith("hub_config/login/rules.py") for where in found.values())


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_every_message_has_a_translation(lang):
    with i18n.po_file(lang).open("rb") as po:
        catalog = read_po(po, locale=lang)
    missing = [
        f"{where}: {msgid!r}"
        for msgid, where in extracted().items()
        if msgid not in catalog or not catalog[msgid].string or catalog[msgid].fuzzy
    ]
    assert not missing, (
        f"no {lang} translation in {i18n.po_file(lang)} (make messages, then translate):\n"
        + "\n".join(missing)
    )


@pytest.mark.parametrize(
    "query, cookie, accept, expected",
    [
        (None, None, None, "fr"),  # nothing known: French, the public's first language
        (None, None, "de-DE,de;q=0.9", "fr"),
        (None, None, "en-US,en;q=0.9,fr;q=0.8", "en"),
        (None, None, "de,fr;q=0.5,en;q=0.7", "en"),
        (None, None, "en;q=0,fr-CA", "fr"),
        (None, "en", "fr", "en"),  # remembered beats the browser
        ("fr", "en", "en", "fr"),  # asked beats remembered
        ("xx", "en", "fr", "en"),
    ],
)
def test_negotiation(query, cookie, accept, expected):
    assert i18n.negotiate(query, cookie, accept) == expected


def test_the_window_refusal_gives_the_dates_in_each_language():
    paris = ZoneInfo("Europe/Paris")
    closed = Closed(
        "zoe",
        (("ia-industrie", dt.datetime(2026, 9, 1, 9, tzinfo=paris), dt.datetime(2026, 9, 12, tzinfo=paris)),),
    )
    fr, en = window_message(closed, "fr"), window_message(closed, "en")
    assert "Votre accès est ouvert" in fr and "1 septembre 2026 à 09:00 (CEST)" in fr
    assert "12 septembre 2026 à 00:00" in fr
    assert "Your access is open" in en and "1 September 2026 at 09:00 (CEST)" in en


def test_pages_render_in_each_language_inside_jupyterhubs_page():
    hub_templates = (str(Path(DATA_FILES_PATH) / "templates"),)
    ns = {
        "state": "unknown",
        "login_url": "/hub/login",
        "static_url": lambda *a, **k: "/static",
        "base_url": "/hub/",
    }
    fr = i18n.render("invitation.html", "fr", hub_templates, **ns)
    assert "Ce lien d’invitation n’est pas valable" in fr and "jupyterhub-logo" in fr
    en = i18n.render("invitation.html", "en", hub_templates, **ns)
    assert "This invitation link is not valid" in en
