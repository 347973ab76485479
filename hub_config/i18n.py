"""The message catalogue of our pages and messages: French and English (Babel, Jinja2's i18n).

Messages are written in English in the templates (hub_config/templates/) and the Python code
(``_ = i18n.gettext(lang)``, then ``_("...")``); ``make messages`` extracts them (babel.cfg) into
hub_config/locale/messages.pot and updates hub_config/locale/<lang>/LC_MESSAGES/messages.po, where
translators fill each one in. A .po is compiled in memory at its first use (no .mo file to rebuild or to go stale);
tests/unit/test_messages.py fails on a message without a French and an English translation.

A visitor's language: a ``lang`` query argument (then remembered in a cookie, and by the hub for a
logged-in user: hub_config/hub_language.py), else that cookie, else what the hub kept for the
user, else the browser's Accept-Language, else French: the platform's public is French first.

Templates find the language in their namespace (``lang``): one Jinja environment serves every
language, and JupyterHub's own environment gets the same ``gettext`` through the ``Catalogue``
extension (docs/languages.md).
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import os
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlencode

from babel.dates import format_datetime
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations
from jinja2 import Environment, FileSystemLoader, pass_context, select_autoescape
from jinja2.ext import InternationalizationExtension

LANGUAGES = ("fr", "en")
NAMES = {"fr": "Français", "en": "English"}  # each in its own language, for the switch
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


def negotiate(
    query: str | None, cookie: str | None, accept_language: str | None, kept: str | None = None
) -> str:
    """The language of a page: asked in the URL, else remembered by this browser, else kept for the
    user by the hub, else the browser's, else French."""
    return (
        _primary(query)
        or _primary(cookie)
        or _primary(kept)
        or next(iter(accepted(accept_language)), DEFAULT)
    )


def remember(handler, lang: str, path: str | None = None) -> None:
    """The language cookie, for the whole site (the hub and its services share one path: a choice
    made on the gallery holds on the hub); JUPYTERHUB_BASE_URL is the site's base in a service."""
    path = path or os.environ.get("JUPYTERHUB_BASE_URL") or handler.base_url
    handler.set_cookie(COOKIE, lang, path=path, expires_days=365, samesite="Lax")


def language(handler, kept: str | None = None) -> str:
    """The language of a request to a tornado handler; a ``lang`` argument is remembered."""
    asked = _primary(handler.get_query_argument("lang", None))
    if asked:
        remember(handler, asked)
    return negotiate(asked, handler.get_cookie(COOKIE), handler.request.headers.get("Accept-Language"), kept)


def switch(handler) -> dict[str, str]:
    """The language switch's links: this page's URL in each language, its other arguments kept."""
    args = [(k, v) for k, vs in handler.request.query_arguments.items() if k != "lang" for v in vs]
    return {
        lang: f"{handler.request.path}?{urlencode([*((k, v.decode()) for k, v in args), ('lang', lang)])}"
        for lang in LANGUAGES
    }


# --- templates ----------------------------------------------------------------------------------


def _lang_of(context) -> str:
    return _primary(context.get("lang")) or DEFAULT


@pass_context
def _gettext(context, message: str) -> str:
    return translations(_lang_of(context)).gettext(message)


@pass_context
def _ngettext(context, singular: str, plural: str, n: int) -> str:
    return translations(_lang_of(context)).ngettext(singular, plural, n)


@pass_context
def _moment(context, value: dt.datetime) -> str:
    return moment(value, _lang_of(context))


class Catalogue(InternationalizationExtension):
    """Jinja2's i18n extension, with our catalogue in the language of the page being rendered
    (``lang`` in its namespace): one environment serves every request, whatever its language.
    JupyterHub's environment loads it through ``jinja_environment_options`` (appliers/languages.py)."""

    def __init__(self, environment: Environment):
        super().__init__(environment)
        environment.install_gettext_callables(_gettext, _ngettext, newstyle=True)
        environment.globals.update(languages=LANGUAGES, language_names=NAMES)
        environment.filters["moment"] = _moment


EXTENSION = f"{__name__}.Catalogue"


@functools.cache
def environment(search_path: tuple[str, ...] = ()) -> Environment:
    """Our templates (``search_path`` first: a service's own templates), with the catalogue."""
    return Environment(
        loader=FileSystemLoader([*search_path, str(TEMPLATES)]),
        autoescape=select_autoescape(["html"]),
        extensions=[EXTENSION],
        lstrip_blocks=True,
    )


def render(name: str, lang: str, search_path: tuple[str, ...] = (), **namespace) -> str:
    return environment(tuple(search_path)).get_template(name).render(lang=lang, **namespace)
