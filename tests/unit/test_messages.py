"""The message catalogue (hub_config/i18n.py): every message of our templates and Python has a
French and an English translation, and pages speak the visitor's language."""

from __future__ import annotations

import datetime as dt
import functools
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from babel.messages.extract import extract_from_dir
from babel.messages.frontend import parse_mapping_cfg
from babel.messages.pofile import read_po

from hub_config import i18n
from hub_config.login.rules import window_message
from hub_config.roster import Closed

REPO = Path(__file__).resolve().parents[2]


@functools.cache
def extracted() -> dict[str, str]:
    """Every message babel finds with the project's babel.cfg (as `make messages` does): id -> where."""
    with open(REPO / "babel.cfg") as cfg:
        method_map, options_map = parse_mapping_cfg(cfg)
    found = {}
    top = {pattern.split("/")[0] for pattern, _ in method_map}  # only the folders babel.cfg names

    def wanted(path: str) -> bool:
        parts = Path(path).relative_to(REPO).parts
        return not parts or (parts[0] in top and "node_modules" not in parts)

    for filename, line, message, *_ in extract_from_dir(
        REPO, method_map, options_map, directory_filter=wanted
    ):
        msgid = message[0] if isinstance(message, tuple) else message
        found.setdefault(msgid, f"{filename}:{line}")
    return found


# Where our pages live: every template there must be one babel.cfg extracts (tests/unit/test_i18n_pages.py
# renders the hub's in each language).
TEMPLATE_DIRS = ("hub_config/templates", "gallery/templates", "footprint/templates")


def test_messages_are_found_in_templates_and_python():
    found = extracted()
    for where in (
        "hub_config/templates/invitation.html",
        "hub_config/templates/invitation-mail.txt",
        "hub_config/templates/login.html",
        "hub_config/templates/page.html",
        "gallery/templates/gallery/index.html",
        "hub_config/login/rules.py",
    ):
        assert any(w.startswith(where + ":") for w in found.values()), f"no message found in {where}"


def test_every_template_is_extracted_and_has_one_copy_for_both_languages():
    from babel.messages.extract import pathmatch

    with open(REPO / "babel.cfg") as cfg:
        method_map, _ = parse_mapping_cfg(cfg)
    for folder in TEMPLATE_DIRS:
        for template in sorted((REPO / folder).rglob("*.*")):
            name = str(template.relative_to(REPO))
            assert any(pathmatch(pattern, name) for pattern, _ in method_map), f"babel.cfg misses {name}"
            text = template.read_text()
            # Translations live in the catalogue, never side by side in a template.
            assert '"fr":' not in text and "[lang]" not in text.replace("title[lang]", "").replace(
                "description[lang]", ""
            ), f"{name} holds its own translations: use _() / {{% trans %}}"


@pytest.mark.parametrize("lang", i18n.LANGUAGES)
def test_every_message_has_a_translation(lang):
    with i18n.po_file(lang).open("rb") as po:
        catalog = read_po(po, locale=lang)

    def translated(message) -> bool:
        """A string, or one per plural form of the language (French has three: 1, many, other)."""
        if isinstance(message.string, tuple):
            return len(message.string) == catalog.num_plurals and all(message.string)
        return bool(message.string)

    missing = [
        f"{where}: {msgid!r}"
        for msgid, where in extracted().items()
        if msgid not in catalog or not translated(catalog[msgid]) or catalog[msgid].fuzzy
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
