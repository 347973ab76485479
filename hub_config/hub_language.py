"""The language of the hub's own pages and of a learner's JupyterLab (hub_config/i18n.py chooses it).

JupyterHub renders its pages with its own Jinja environment and builds each page's namespace in
``BaseHandler.template_namespace``; ``install()`` (called by jupyterhub_config.py) adds the
request's language to that namespace, so our templates (hub_config/templates/, on
``template_paths``) and the ``Catalogue`` extension translate every page, error pages included.
A language chosen by a logged-in user is kept in a small table of the hub's database, so it holds
on their next log-in from another browser; the spawner passes it to JupyterLab (``AILYS_LANG``,
read by spawners/jupyter-config/learner/jupyter_server_config.py). The spawn page's own query
arguments are launch options, so the switch's ``lang`` is taken out of them first.
"""

from __future__ import annotations

from jupyterhub.handlers import BaseHandler
from jupyterhub.handlers.pages import SpawnHandler
from sqlalchemy import text

from . import i18n

TABLE = "ailys_languages"  # user name -> language: the only thing we add to the hub's database
ENV = "AILYS_LANG"

_created: set[int] = set()  # engines whose table exists (one check per hub process)


def _table(db) -> None:
    engine = db.get_bind()
    if id(engine) not in _created:
        db.execute(
            text(f"CREATE TABLE IF NOT EXISTS {TABLE} (name VARCHAR(255) PRIMARY KEY, lang VARCHAR(8))")
        )
        db.commit()
        _created.add(id(engine))


def kept(db, name: str) -> str | None:
    """The language the user last chose on the hub, or None."""
    _table(db)
    row = db.execute(text(f"SELECT lang FROM {TABLE} WHERE name = :name"), {"name": name}).first()
    return row[0] if row else None


def keep(db, name: str, lang: str) -> None:
    _table(db)
    if kept(db, name) is None:
        db.execute(
            text(f"INSERT INTO {TABLE} (name, lang) VALUES (:name, :lang)"), {"name": name, "lang": lang}
        )
    else:
        db.execute(text(f"UPDATE {TABLE} SET lang = :lang WHERE name = :name"), {"name": name, "lang": lang})
    db.commit()


def kept_if_any(db, name: str) -> str | None:
    """The kept language of ``name`` without creating the table (personal data export: read only)."""
    from sqlalchemy import inspect

    if not inspect(db.get_bind()).has_table(TABLE):
        return None
    row = db.execute(text(f"SELECT lang FROM {TABLE} WHERE name = :name"), {"name": name}).first()
    return row[0] if row else None


def forget(db, name: str) -> None:
    """Remove the kept language of ``name`` (``ailys person forget``); the caller commits."""
    from sqlalchemy import inspect

    if inspect(db.get_bind()).has_table(TABLE):
        db.execute(text(f"DELETE FROM {TABLE} WHERE name = :name"), {"name": name})


def hub_language(handler: BaseHandler) -> str:
    """The request's language (once per request). This browser's choice (``?lang=``, or its cookie:
    a switch made on the login page counts) is kept for a logged-in user; a user's kept choice
    becomes the cookie of a browser without one, so the services' pages follow it too."""
    if hasattr(handler, "_ailys_lang"):
        return handler._ailys_lang
    user = getattr(handler, "_jupyterhub_user", None)  # resolved in prepare(); None before it
    # This browser's choice: made now, or earlier (maybe on the login page, before logging in).
    chosen = i18n._primary(handler.get_query_argument("lang", None)) or i18n._primary(
        handler.get_cookie(i18n.COOKIE)
    )
    stored = None
    if user is not None and getattr(user, "name", None):
        stored = kept(handler.db, user.name)
        if chosen and chosen != stored:
            keep(handler.db, user.name, chosen)
        elif stored and not chosen:
            i18n.remember(handler, stored)
    handler._ailys_lang = i18n.language(handler, stored)
    return handler._ailys_lang


def _namespace_with_language(original):
    def template_namespace(self) -> dict:
        ns = original.fget(self)
        ns.update(lang=hub_language(self), language_links=i18n.switch(self))
        return ns

    return property(template_namespace)


def _spawn_page_without_language_argument(get):
    """JupyterHub's spawn page starts a server with its query arguments as the launch options
    (`/hub/spawn?course=algo`), so the language switch's `?lang=en` would launch one: the
    argument is read (and remembered) first, then taken out of the request."""

    async def spawn_page(self, *args, **kwargs):
        if "lang" in self.request.query_arguments:
            hub_language(self)
            self.request.query_arguments.pop("lang")
            self.request.arguments.pop("lang", None)
        return await get(self, *args, **kwargs)

    spawn_page._ailys = True
    return spawn_page


def install() -> None:
    """Adds the language to every hub page's namespace (once per process)."""
    if not getattr(BaseHandler.template_namespace.fget, "_ailys", False):
        patched = _namespace_with_language(BaseHandler.template_namespace)
        patched.fget._ailys = True
        BaseHandler.template_namespace = patched
    if not getattr(SpawnHandler.get, "_ailys", False):
        SpawnHandler.get = _spawn_page_without_language_argument(SpawnHandler.get)


def spawn_language(spawner) -> str:
    """The language of the user's JupyterLab: the one of the request that launched it (which
    holds a choice just made), else the one kept for the user, else French."""
    handler = getattr(spawner, "handler", None)
    if handler is not None:
        return hub_language(handler)
    return kept(spawner.user.db, spawner.user.name) or i18n.DEFAULT


def spawn_translations(spawner):
    """The catalogue of the launch form (spawners/launch_form.py): the language of the request
    that opened it (the hub sets the spawner's handler before asking for its form)."""
    return i18n.translations(spawn_language(spawner))
