"""The gallery: a Voilà application whose only pages are the listing and the declared demos.

Voilà's own handlers are kept for what a demo page needs (static files, templates, themes,
lab extensions, the kernel's model and websocket); its tree, render, files and contents
handlers are not registered, so no request path is ever mapped to a file by Voilà. Visitors
are identified through the hub (HubOAuth) only when a demo is not public.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote

import tornado.web
from jupyter_server.base.handlers import FileFindHandler, JupyterHandler
from jupyter_server.services.kernels.handlers import KernelHandler
from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler
from jupyterlab_server.themes_handler import ThemesHandler
from prometheus_client import REGISTRY
from tornado.httputil import url_concat
from tornado.ioloop import IOLoop, PeriodicCallback
from traitlets import Unicode
from voila.app import Voila
from voila.static_file_handler import MultiStaticFileHandler, TemplateStaticFileHandler
from voila.tornado.kernel_websocket_handler import VoilaKernelWebsocketHandler

from hub_config import i18n
from hub_config.catalogue import LiveCatalogue
from hub_config.metrics import MetricsHandler

from .demos import demo_entries, find_demo, notebook_file, visible_to
from .kernels import Busy, DemoKernels, RenderFailed
from .metrics import BUSY_PAGES, KernelsCollector

TEMPLATES = Path(__file__).parent / "templates" / "gallery"
# Voilà's handlers that a demo page needs; everything else of Voilà's is left out.
KEPT_VOILA_HANDLERS = (
    KernelHandler,
    VoilaKernelWebsocketHandler,
    TemplateStaticFileHandler,
    MultiStaticFileHandler,
    ThemesHandler,
    FileFindHandler,
)
CONFINED = (TemplateStaticFileHandler, MultiStaticFileHandler, ThemesHandler, FileFindHandler)


class Confined:
    """For Voilà's static handlers: a path with a '..' segment, an absolute path, a backslash or
    a NUL (after URL decoding, which tornado has done) is not found, and so is anything the
    handler itself refuses as outside its folders; error pages are plain text (Jupyter's error
    template needs settings the gallery does not have)."""

    def prepare(self):
        for arg in self.path_args:
            if arg.startswith("/") or "\\" in arg or "\0" in arg or ".." in arg.split("/"):
                raise tornado.web.HTTPError(404)
        return super().prepare()

    def send_error(self, status_code: int = 500, **kwargs) -> None:
        super().send_error(404 if status_code == 403 else status_code, **kwargs)

    def write_error(self, status_code: int, **kwargs) -> None:
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code} {self._reason}\n")


def confined(handler: type) -> type:
    return type(f"Confined{handler.__name__}", (Confined, handler), {})


class GalleryHandler(JupyterHandler):
    """Pages of ours: the hub user (if any), the catalogue, our templates."""

    @property
    def gallery(self) -> GalleryApp:
        return self.settings["gallery"]

    async def hub_user(self) -> tuple[str | None, frozenset[str]]:
        """The visitor's name and hub groups (JupyterHub's identify model holds both), or None."""
        model = await self.settings["hub_auth"].get_user(self, sync=False)
        return (model["name"], frozenset(model.get("groups") or ())) if model else (None, frozenset())

    def lang(self) -> str:
        if not hasattr(self, "_lang"):
            self._lang = i18n.language(self)  # the site-wide choice, shared with the hub's pages
        return self._lang

    def page(self, name: str, status: int = 200, **ns) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        ns.update(base_url=self.base_url, language_links=i18n.switch(self))
        self.finish(i18n.render(name, self.lang(), (str(TEMPLATES),), **ns))

    def write_error(self, status_code: int, **kwargs) -> None:
        self.page("error.html", status_code, code=status_code, reason=self._reason)

    def login_redirect(self) -> None:
        hub_auth: HubOAuth = self.settings["hub_auth"]
        params = {}
        verifier = None
        if hub_auth.pkce_enabled:
            verifier, challenge, method = hub_auth.generate_pkce_code_challenge()
            params.update(code_challenge=challenge, code_challenge_method=method)
        params["state"] = hub_auth.set_state_cookie(self, next_url=self.request.uri, code_verifier=verifier)
        self.redirect(url_concat(hub_auth.login_url, params))


class IndexHandler(GalleryHandler):
    async def get(self):
        user, groups = await self.hub_user()
        catalogue = self.gallery.catalogue.current()
        admins = set(catalogue.site.authentication.admin_users)
        demos = []
        for entry in demo_entries(catalogue):
            if notebook_file(catalogue.courses_dir, entry) is None:
                continue  # declared, but missing or outside its demos folder: logged at start
            demos.append(
                {
                    "entry": entry,
                    "url": f"{self.base_url}demo/{quote(entry.key)}",
                    "access": visible_to(entry, user, admin=user in admins, groups=groups),
                }
            )
        self.page("index.html", demos=demos, user=user, hub_url=self.settings["hub_url"])


class DemoHandler(GalleryHandler):
    async def get(self, key: str):
        catalogue = self.gallery.catalogue.current()
        entry = find_demo(catalogue, key)
        path = entry and notebook_file(catalogue.courses_dir, entry)
        if entry is None or path is None:
            raise tornado.web.HTTPError(404)
        user, groups = (None, frozenset()) if entry.demo.public else await self.hub_user()
        admin = user in catalogue.site.authentication.admin_users
        access = visible_to(entry, user, admin=admin, groups=groups)
        if access == "login":
            return self.login_redirect()
        if access == "forbidden":
            raise tornado.web.HTTPError(403, f"{entry.key} is for the members of {entry.course.slug}")
        _ = self.xsrf_token  # sets the _xsrf cookie that the page's shutdown beacon sends back
        notebook_path = str(path.relative_to(self.gallery.root))
        try:
            rendered = await self.gallery.kernels.page(entry, notebook_path)
        except Busy:
            BUSY_PAGES.labels(entry.course.slug).inc()
            retry = self.gallery.gallery_settings.retry_after
            self.set_header("Retry-After", str(retry))
            return self.page("busy.html", 503, entry=entry, retry_after=retry)
        except RenderFailed:
            raise tornado.web.HTTPError(500, f"{entry.key} could not be executed") from None
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.finish(rendered.html)


class ShutdownHandler(GalleryHandler):
    """The page's beforeunload beacon (Voilà's frontend posts it with the _xsrf cookie's value)."""

    async def post(self, kernel_id: str):
        await self.gallery.kernels.page_closed(kernel_id)
        self.set_status(204)
        self.finish()


class StatusHandler(GalleryHandler):
    def get(self):
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(self.gallery.kernels.status()))


class OAuthCallbackHandler(HubOAuthCallbackHandler):
    @property
    def hub_auth(self):
        return self.settings["hub_auth"]


class GalleryApp(Voila):
    name = "ailys-gallery"
    description = "AILyS Hub demo gallery"
    site_file = Unicode(help="The site file whose courses declare the demos.").tag(config=True)

    def initialize(self, argv=None):
        super().initialize(argv)
        # Kernels talk to the gallery over Unix sockets in its private connection folder, not
        # loopback TCP: no port race with other processes (a kernel that lost one died at start
        # and its page waited 90 s), and no other account can reach a kernel.
        self.config.KernelManager.transport = "ipc"
        # Without the roster files of the hub's data folder, which the gallery's account may not
        # read: membership comes from the visitor's hub groups (demos.py).
        self.catalogue = LiveCatalogue(self.site_file, self.log, sources=False)
        catalogue = self.catalogue.current()
        self.gallery_settings = catalogue.site.gallery
        self.root = catalogue.courses_dir.resolve()
        self.root_dir = str(self.root)
        self.notebook_path = None
        vc = self.voila_configuration
        vc.preheat_kernel = False  # our pools (kernels.py) preheat, within the caps
        vc.allow_template_override = "NO"
        vc.allow_theme_override = "NO"
        vc.show_tracebacks = False  # a visitor never sees a traceback (paths, code) of a demo
        vc.strip_sources = True
        vc.file_allowlist = []
        # Only the widget managers: fewer scripts to load, and none of the JupyterLab
        # extensions installed for learners (nbgrader...), which fail outside JupyterLab.
        vc.extension_allowlist = ["@jupyter-widgets/jupyterlab-manager", "@voila-dashboards/widgets-manager8"]

    def init_settings(self):
        settings = super().init_settings()
        self.hub_auth = HubOAuth(parent=self, cache_max_age=60)
        settings.update(
            gallery=self,
            hub_auth=self.hub_auth,
            hub_url=os.environ.get("JUPYTERHUB_BASE_URL", "/"),
            xsrf_cookie_kwargs={"path": self.base_url},
        )
        return settings

    def init_handlers(self):
        kept = [
            (h[0], confined(h[1]) if h[1] in CONFINED else h[1], *h[2:])
            for h in super().init_handlers()
            if h[1] in KEPT_VOILA_HANDLERS
        ]
        base = self.base_url
        return [
            (base, IndexHandler),
            (f"{base}demo/(.+)", DemoHandler),
            (f"{base}oauth_callback", OAuthCallbackHandler),
            (f"{base}api/status", StatusHandler),
            (f"{base}metrics", MetricsHandler, {"hub_auth": self.hub_auth}),
            (f"{base}voila/api/shutdown/(.+)", ShutdownHandler),
            *kept,
        ]

    def listen(self):
        # Runs once the tornado application exists, before the loop starts.
        self.kernels = DemoKernels(self, self.gallery_settings, self.log)
        REGISTRY.register(KernelsCollector(self.kernels))
        IOLoop.current().add_callback(self.preheat)
        every = max(0.5, min(5.0, self.gallery_settings.closed_page_timeout / 4)) * 1000
        PeriodicCallback(self.kernels.sweep, every).start()
        super().listen()

    def preheat(self):
        catalogue = self.catalogue.current()
        for entry in demo_entries(catalogue):
            path = notebook_file(catalogue.courses_dir, entry)
            if path is None:
                self.log.error(
                    "Demo %s: %s is missing or outside its demos folder", entry.key, entry.notebook_path
                )
                continue
            self.kernels.fill(entry, str(path.relative_to(self.root)))

    def stop(self):
        from jupyter_core.utils import run_sync

        run_sync(self.kernels.shutdown_all)()
        super().stop()
