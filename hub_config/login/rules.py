"""What every authenticator of the hub shares, whatever checks the password: the catalogue
(hub_config/roster.py) says who may log in, when (trainees' access windows) and with which roles.

``CatalogueRules`` goes first in an authenticator's bases, before the JupyterHub authenticator
that checks passwords or tokens (NativeAuthenticator, LDAPAuthenticator, GenericOAuthenticator):

    class LocalLogin(CatalogueRules, NativeAuthenticator): ...

It refuses a system account's name, anyone no course or admin list holds, and a trainee outside
their window (with the dates: ``WindowClosed``); it grants course roles after every login and
refresh (Authenticator.manage_roles), and refuses a refresh once the person left every course or
their window closed, which sends a browser back to the login page.
"""

from __future__ import annotations

from jupyterhub.auth import Authenticator
from tornado import web
from traitlets import Unicode

from ..appliers.access import instructor_role, roles_of
from ..catalogue import Catalogue, LiveCatalogue
from ..roster import Closed
from ..schema import is_reserved


class WindowClosed(web.HTTPError):
    """Login refused: every course of the person is a short course whose access window is closed.
    JupyterHub shows ``jupyterhub_message`` on its error page."""

    def __init__(self, closed: Closed):
        self.closed = closed
        self.jupyterhub_message = window_message(closed)
        super().__init__(403, self.jupyterhub_message)


def window_message(closed: Closed) -> str:
    """The dates of the person's courses, in French and English."""
    spans = "; ".join(
        f"{slug}: {opens:%Y-%m-%d %H:%M} – {closes:%Y-%m-%d %H:%M} ({opens:%Z})"
        for slug, opens, closes in closed.windows
    )
    return (
        f"Votre accès est ouvert seulement pendant votre formation / "
        f"Your access is open only around your course: {spans}"
    )


class CatalogueRules(Authenticator):
    site_file = Unicode(help="Site file whose catalogue says who may log in.").tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._live = LiveCatalogue(self.site_file, self.log)

    def catalogue(self) -> Catalogue:
        return self._live.current()

    def check_blocked_users(self, username, authentication=None):
        # The catalogue never lists a system account's name; this holds whatever else lists one
        # (Authenticator.admin_users or allowed_users set in a drop-in, an old demo-logins line).
        if is_reserved(username):
            self.log.warning("Login refused: %r is the name of a system or service account", username)
            return False
        return super().check_blocked_users(username, authentication)

    async def check_allowed(self, username, authentication=None):
        catalogue = self.catalogue()
        if is_reserved(username) or username not in catalogue.people():
            return False
        closed = catalogue.closed_for(username)
        if closed:
            self.log.warning("Login refused: %s is outside the access window of %s", username, closed.windows)
            raise WindowClosed(closed)
        return True

    def auth_model(self, username: str, catalogue: Catalogue, model: dict | None = None) -> dict:
        # With manage_roles the model lists every role the user keeps, JupyterHub's defaults too,
        # by name only: a full definition would reset the user role to "self" and drop the scopes
        # the hub adds to it (JupyterHub.extra_user_scopes: the exchange service's access).
        kept = {"user"} | ({"admin"} if username in self.admin_users else set())
        defaults = [{"name": name} for name in sorted(kept)]
        return {**(model or {}), "name": username, "roles": defaults + roles_of(username, catalogue)}

    async def run_post_auth_hook(self, handler, authentication):
        # After the name is normalized and check_allowed passed: the roles of that name.
        authentication = await super().run_post_auth_hook(handler, authentication)
        return self.auth_model(authentication["name"], self.catalogue(), authentication)

    async def refresh_user(self, user, handler=None):
        catalogue = self.catalogue()
        if not catalogue.may_log_in(user.name):
            return False  # left every course, or the window closed: log in again, which is refused
        refreshed = await super().refresh_user(user, handler)
        if not refreshed:
            return False
        return self.auth_model(user.name, catalogue, refreshed if isinstance(refreshed, dict) else None)

    async def load_managed_roles(self):
        catalogue = self.catalogue()
        return [
            {**instructor_role(c, catalogue.learners(c)), "users": list(c.instructors)}
            for c in catalogue.courses
        ]
