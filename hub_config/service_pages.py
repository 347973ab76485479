"""What the pages of our hub services share (footprint/service.py, hub_config/mentors.py): the
hub's OAuth login, the visitor's language, a page rendered through the message catalogue.

An application using them puts in its tornado settings ``hub_auth`` (a HubOAuth), ``base_url``
(the service's prefix) and ``hub_url``; a handler sets ``templates`` to its own template folders.
"""

from __future__ import annotations

import tornado.web
from jupyterhub.services.auth import HubOAuthCallbackHandler, HubOAuthenticated

from . import i18n


class ServicePage(HubOAuthenticated, tornado.web.RequestHandler):
    templates: tuple[str, ...] = ()  # more template folders than hub_config/templates

    @property
    def hub_auth(self):
        return self.settings["hub_auth"]

    @property
    def base_url(self) -> str:  # where i18n.language keeps the remembered language's cookie
        return self.settings["base_url"]

    def lang(self) -> str:
        if not hasattr(self, "_lang"):
            self._lang = i18n.language(self)
        return self._lang

    def page(self, name: str, status: int = 200, **ns) -> None:
        """Render template ``name`` in the visitor's language, never cached (the page is theirs)."""
        self.set_status(status)
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        ns = {
            "base_url": self.settings["base_url"],
            "hub_url": self.settings["hub_url"],
            "language_links": i18n.switch(self),
            **ns,
        }
        self.finish(i18n.render(name, self.lang(), self.templates, **ns))


class ServiceOAuthCallback(HubOAuthCallbackHandler):
    @property
    def hub_auth(self):
        return self.settings["hub_auth"]
