"""Every hub page in French and English from one template (hub_config/templates/ through
JupyterHub's own Jinja environment, set up as JupyterHub sets it up), and the choice of language
of a request: the user's setting, then the browser's, then French."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace

import pytest
import tornado.httpclient
import tornado.httpserver
import tornado.testing
import tornado.web
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader
from jupyterhub._data import DATA_FILES_PATH
from sqlalchemy import create_engine
from sqlalchemy.orm import Session
from traitlets.config import Config

from hub_config import i18n
from hub_config.appliers.languages import apply_languages
from hub_config.hub_language import ENV, hub_language, kept, spawn_language

JUPYTERHUB_TEMPLATES = str(Path(DATA_FILES_PATH) / "templates")


@pytest.fixture(scope="module")
def hub_env() -> Environment:
    """JupyterHub's environment as its init_tornado_settings builds it, from our applier's settings."""
    c = Config()
    apply_languages(c)
    paths = [*c.JupyterHub.template_paths, JUPYTERHUB_TEMPLATES]
    loader = ChoiceLoader(
        [PrefixLoader({"templates": FileSystemLoader([JUPYTERHUB_TEMPLATES])}, "/"), FileSystemLoader(paths)]
    )
    return Environment(loader=loader, autoescape=True, **c.JupyterHub.jinja_environment_options)


def namespace(lang: str, **extra) -> dict:
    user = SimpleNamespace(
        name="i16-ana", json_escaped_name="i16-ana", spawner=SimpleNamespace(options_form=None)
    )
    return {
        "lang": lang,
        "language_links": {"fr": "/hub/login?lang=fr", "en": "/hub/login?lang=en"},
        "base_url": "/hub/",
        "prefix": "/",
        "static_url": lambda *a, **k: "/hub/static/x",
        "login_url": "/hub/login",
        "logout_url": "/hub/logout",
        "authenticator_login_url": "/hub/login",
        "parsed_scopes": set(),
        "services": [],
        "xsrf": "x",
        "xsrf_token": "x",
        "user": user,
        "authenticator": SimpleNamespace(request_otp=False),
        **extra,
    }


# (template, extra namespace, French string, English string): what a person reads first there.
PAGES = [
    ("login.html", {"user": None}, "Nom d'utilisateur", "Username:"),
    (
        "home.html",
        {"default_server": SimpleNamespace(active=False), "url": "/hub/spawn"},
        "Démarrer mon serveur",
        "Start my server",
    ),
    (
        "spawn.html",
        {"spawner_options_form": "<select></select>", "url": "/hub/spawn"},
        "Lancer votre serveur",
        "Launch your server",
    ),
    ("spawn_pending.html", {"progress_url": "/p"}, "Votre serveur démarre", "Your server is starting"),
    (
        "error.html",
        {"status_code": 403, "status_message": "Forbidden"},
        "Vous n'avez pas accès",
        "You may not open",
    ),
    (
        "404.html",
        {"status_code": 404, "status_message": "Not Found"},
        "Cette page n'existe pas",
        "This page does not exist",
    ),
    ("logout.html", {"user": None}, "Vous êtes déconnecté", "You are logged out"),
    ("not_running.html", {"failed": True, "spawn_url": "/s"}, "Relancer", "Launch again"),
    ("stop_pending.html", {}, "Votre serveur s'arrête", "Your server is stopping"),
    (
        "invitation.html",
        {"state": "unknown"},
        "Ce lien d’invitation n’est pas valable",
        "This invitation link is not valid",
    ),
]


@pytest.mark.parametrize("name, extra, french, english", PAGES, ids=[p[0] for p in PAGES])
def test_each_hub_page_speaks_french_and_english_inside_jupyterhubs_page(
    hub_env, name, extra, french, english
):
    fr = hub_env.get_template(name).render(**namespace("fr", **extra))
    en = hub_env.get_template(name).render(**namespace("en", **extra))
    assert french in fr and english not in fr
    assert english in en and french not in en
    assert 'document.documentElement.lang = "fr"' in fr and 'document.documentElement.lang = "en"' in en
    assert 'id="ailys-languages"' in fr and 'hreflang="en"' in fr  # the switch, on every page
    assert "jupyterhub-logo" in fr  # inside JupyterHub's own page


def test_the_login_page_lists_public_demos_in_the_visitors_language(hub_env):
    demos = [{"title": {"fr": "Voisins", "en": "Neighbours"}, "url": "/services/gallery/demo/a/knn"}]
    ns = {"user": None, "gallery_url": "/services/gallery/", "gallery_public_demos": demos}
    fr = hub_env.get_template("login.html").render(**namespace("fr", **ns))
    en = hub_env.get_template("login.html").render(**namespace("en", **ns))
    assert "Galerie de démos" in fr and ">Voisins<" in fr and "Neighbours" not in fr
    assert "Demo gallery" in en and ">Neighbours<" in en


def test_the_applier_puts_our_templates_first_and_keeps_what_others_set():
    c = Config()
    c.JupyterHub.template_paths = ["/elsewhere"]
    c.Spawner.environment = {"JUPYTER_CONFIG_PATH": "/x"}
    apply_languages(c)
    assert c.JupyterHub.template_paths == [str(i18n.TEMPLATES), "/elsewhere"]
    assert c.JupyterHub.jinja_environment_options["extensions"] == [i18n.EXTENSION]
    assert c.Spawner.environment["JUPYTER_CONFIG_PATH"] == "/x"
    assert c.Spawner.environment[ENV] is spawn_language


# --- the choice of a request's language, through a real tornado server and a real database ------


class LanguageHandler(tornado.web.RequestHandler):
    """What the hub's handlers give hub_language: the database and the logged-in user (if any)."""

    def prepare(self):
        self.db = self.settings["db"]
        name = self.request.headers.get("X-Test-User")
        self._jupyterhub_user = SimpleNamespace(name=name) if name else None

    @property
    def base_url(self):
        return "/"

    def get(self):
        self.finish(hub_language(self))


async def ask(port: int, query: str = "", **headers) -> tornado.httpclient.HTTPResponse:
    client = tornado.httpclient.AsyncHTTPClient()
    return await client.fetch(f"http://127.0.0.1:{port}/page{query}", headers=headers)


def test_the_language_is_the_users_setting_else_the_browsers_else_french(tmp_path, monkeypatch):
    monkeypatch.delenv("JUPYTERHUB_BASE_URL", raising=False)
    db = Session(create_engine(f"sqlite:///{tmp_path / 'hub.sqlite'}"))

    async def scenario():
        sock, port = tornado.testing.bind_unused_port()
        server = tornado.httpserver.HTTPServer(tornado.web.Application([("/page", LanguageHandler)], db=db))
        server.add_sockets([sock])
        try:
            body = lambda r: r.body.decode()  # noqa: E731
            assert body(await ask(port)) == "fr"  # nothing known: French
            assert body(await ask(port, **{"Accept-Language": "en-GB,en;q=0.9"})) == "en"  # the browser's
            assert body(await ask(port, **{"Accept-Language": "de-DE"})) == "fr"
            # A visitor's choice is this browser's cookie, for the whole site.
            chosen = await ask(port, "?lang=en", **{"Accept-Language": "fr"})
            assert body(chosen) == "en"
            cookie = chosen.headers["Set-Cookie"]
            assert cookie.startswith(f"{i18n.COOKIE}=en") and "Path=/;" in cookie
            again = await ask(port, Cookie=f"{i18n.COOKIE}=en", **{"Accept-Language": "fr"})
            assert body(again) == "en"
            # Chosen before logging in (the cookie), it is kept once the user is logged in.
            await ask(port, Cookie=f"{i18n.COOKIE}=en", **{"X-Test-User": "i16-ana"})
            assert kept(db, "i16-ana") == "en"
            # A logged-in user's choice is kept by the hub: another browser (no cookie) follows it.
            assert body(await ask(port, "?lang=en", **{"X-Test-User": "i16-bob"})) == "en"
            assert kept(db, "i16-bob") == "en"
            elsewhere = await ask(port, **{"X-Test-User": "i16-bob", "Accept-Language": "fr"})
            assert body(elsewhere) == "en"
            assert elsewhere.headers["Set-Cookie"].startswith(f"{i18n.COOKIE}=en")  # services follow
            # This browser's latest choice wins over the kept one, and becomes the kept one.
            assert body(await ask(port, "?lang=fr", **{"X-Test-User": "i16-bob"})) == "fr"
            assert kept(db, "i16-bob") == "fr"
            assert kept(db, "i16-nobody") is None
        finally:
            server.stop()

    asyncio.run(scenario())


def test_a_learners_jupyterlab_gets_the_language_kept_for_them(tmp_path):
    db = Session(create_engine(f"sqlite:///{tmp_path / 'hub.sqlite'}"))
    from hub_config.hub_language import keep

    keep(db, "i16-carla", "en")
    spawner = SimpleNamespace(handler=None, user=SimpleNamespace(db=db, name="i16-carla"))
    assert spawn_language(spawner) == "en"
    spawner.user.name = "i16-dan"  # nothing kept: French
    assert spawn_language(spawner) == "fr"


def test_the_switch_keeps_the_pages_other_arguments():
    request = SimpleNamespace(path="/hub/login", query_arguments={"next": [b"/hub/spawn"], "lang": [b"fr"]})
    links = i18n.switch(SimpleNamespace(request=request))
    assert links == {
        "fr": "/hub/login?next=%2Fhub%2Fspawn&lang=fr",
        "en": "/hub/login?next=%2Fhub%2Fspawn&lang=en",
    }


def test_the_hubs_configuration_has_our_pages_and_the_learners_language(catalogue):
    from hub_config.appliers import apply_all
    from hub_config.secrets import Secrets

    c = apply_all(
        Config(),
        catalogue,
        Secrets(Path("/s"), proxy_token="p" * 64, sync_token="s" * 64, cli_token="c" * 64),
    )
    assert c.JupyterHub.template_paths[0] == str(i18n.TEMPLATES)
    assert i18n.EXTENSION in c.JupyterHub.jinja_environment_options["extensions"]
    assert c.Spawner.environment[ENV] is spawn_language
    assert "JUPYTER_CONFIG_PATH" in c.Spawner.environment  # the spawner applier's, kept
