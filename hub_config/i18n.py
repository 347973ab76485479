"""The message catalogue of our pages and messages: French and English (Babel, Jinja2's i18n).

Messages are written in English in the templates (hub_config/templates/) and the Python code
(``_ = i18n.gettext(lang)``, then ``_("...")``); ``make messages`` extracts them (babel.cfg) into
hub_config/locale/messages.pot and updates hub_config/locale/<lang>/LC_MESSAGES/messages.po, where
translators fill each one in. A .po is compiled in memory at its first use (no .mo file to rebuild or to go stale);
tests/unit/test_messages.py fails on a message without a French and an English translation.

A visitor's language: a ``lang`` query argument (then remembered in a cookie), else that cookie,
else the browser's Accept-Language, else French: the platform's public is French first.
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from collections.abc import Callable
from pathlib import Path

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, select_autoescape

LANGUAGES = ("fr", "en")
DEFAULT = "fr"
COOKIE = "ailys-lang"
LOCALE_DIR = Path(__file__).resolve().parent / "locale"
TEMPLATES = Path(__file__).resolve().parent / "templates"


def po_file(lang: str) -> Path:
    return LOCALE_DIR / lang / "LC_MESSAGES" / "messages.po"


@functools.cache
def translations(lang: str) -> Translations:
    """The compiled catalogue of ``lang`` (one of LANGUAGES); fuzzy entries are left out."""
    if lang not in LANGUAGES:
        raise ValueError(f"no message catalogue for language {lang!r} (known: {', '.join(LANGUAGES)})")
    with po_file(lang).open("rb") as po:
        catalog = read_po(po, locale=lang)
    compiled = io.BytesIO()
    write_mo(compiled, catalog, use_fuzzy=False)
    compiled.seek(0)
    return Translations(compiled, domain="messages")


def gettext(lang: str) -> Callable[[str], str]:
    """``_`` for Python messages: ``_ = gettext(lang); _("Your access ...")``."""
    return translations(lang).gettext


def moment(value: dt.datetime, lang: str) -> str:
    """A date and time as people of ``lang`` write it, with its zone: 1 septembre 2026 à 09:00 (CEST)."""
    day = format_datetime(value, "d MMMM y", tzinfo=value.tzinfo, locale=lang)
    time = format_datetime(value, "HH:mm", tzinfo=value.tzinfo, locale=lang)
    _ = gettext(lang)
    at = _("{day} at {time}").format(day=day, time=time)
    return f"{at} ({value:%Z})" if value.tzinfo else at


# --- choosing the language --------------------------------------------------------------------


def _primary(tag: str | None) -> str | None:
    """fr-FR -> fr; None for a language we have no catalogue for."""
    lang = (tag or "").strip().split("-")[0].split("_")[0].lower()
    return lang if lang in LANGUAGES else None


def accepted(header: str | None) -> list[str]:
    """The languages of an Accept-Language header we have, best first (q=0 means 'not this')."""
    ranked = []
    for order, part in enumerate((header or "").split(",")):
        tag, _, params = part.partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        lang = _primary(tag)
        if lang and q > 0:
            ranked.append((-q, order, lang))
    return list(dict.fromkeys(lang for *_, lang in sorted(ranked)))


def negotiate(query: str | None, cookie: str | None, accept_language: str | None) -> str:
    """The language of a page: asked in the URL, else remembered, else the browser's, else French."""
    return _primary(query) or _primary(cookie) or next(iter(accepted(accept_language)), DEFAULT)


def language(handler) -> str:
    """The language of a request to a tornado handler; a ``lang`` argument is remembered."""
    asked = _primary(handler.get_query_argument("lang", None))
    if asked:
        handler.set_cookie(COOKIE, asked, path=handler.base_url, expires_days=365, samesite="Lax")
    return negotiate(asked, handler.get_cookie(COOKIE), handler.request.headers.get("Accept-Language"))


# --- templates ----------------------------------------------------------------------------------


@functools.cache
def environment(lang: str, search_path: tuple[str, ...] = ()) -> Environment:
    """Our templates in ``lang``; ``search_path`` (JupyterHub's template paths) lets a page extend
    JupyterHub's page.html. One environment per language: translations are installed once, never
    swapped between two requests."""
    env = Environment(
        loader=FileSystemLoader([str(TEMPLATES), *search_path]),
        autoescape=select_autoescape(["html"]),
        extensions=["jinja2.ext.i18n"],
        lstrip_blocks=True,
    )
    env.install_gettext_translations(translations(lang), newstyle=True)
    env.globals.update(lang=lang, languages=LANGUAGES)
    env.filters["moment"] = lambda value: moment(value, lang)
    return env


def render(name: str, lang: str, search_path: tuple[str, ...] = (), **namespace) -> str:
    return environment(lang, tuple(search_path)).get_template(name).render(**namespace)
