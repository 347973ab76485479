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

from .. import i18n
from ..appliers.access import instructor_role, roles_of
from ..appliers.teams import managed_team_roles
from ..catalogue import Catalogue, LiveCatalogue
from ..personal_data.logins import login_method, record_login
from ..roster import Closed
from ..schema import is_reserved


class WindowClosed(web.HTTPError):
    """Login refused: every course of the person is a short course whose access window is closed.
    JupyterHub shows ``jupyterhub_message`` on its error page, in the person's language."""

    def __init__(self, closed: Closed, lang: str = i18n.DEFAULT):
        self.closed = closed
        self.jupyterhub_message = window_message(closed, lang)
        super().__init__(403, self.jupyterhub_message)


def window_message(closed: Closed, lang: str = i18n.DEFAULT) -> str:
    """The dates of the person's courses, from the message catalogue (hub_config/i18n.py)."""
    _ = i18n.gettext(lang)
    spans = "; ".join(
        _("{course}: from {opens} to {closes}").format(
            course=slug, opens=i18n.moment(opens, lang), closes=i18n.moment(closes, lang)
        )
        for slug, opens, closes in closed.windows
    )
    return _("Your access is open only around your course. {windows}.").format(windows=spans)


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

    async def get_authenticated_user(self, handler, data):
        # check_allowed has no request: the refusal is put in the person's language here.
        try:
            return await super().get_authenticated_user(handler, data)
        except WindowClosed as refused:
            lang = i18n.language(handler) if handler is not None else i18n.DEFAULT
            raise WindowClosed(refused.closed, lang) from None

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
        catalogue = self.catalogue()
        try:  # the person's log-in record (personal_data/logins.py): time and method, nothing more
            record_login(catalogue.data_dir, authentication["name"], login_method(self))
        except (OSError, ValueError) as err:  # a full disk must not lock everyone out
            self.log.error("Login of %s not recorded: %s", authentication["name"], err)
        return self.auth_model(authentication["name"], catalogue, authentication)

    async def refresh_user(self, user, handler=None):
        if handler is not None and not hasattr(handler, "_token_authenticated"):
            # JupyterHub 6.1's refresh_auth reads this flag, set only on token-authenticated
            # requests: a refusal on a cookie request would log an AttributeError traceback.
            handler._token_authenticated = False
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
        ] + managed_team_roles(catalogue)
