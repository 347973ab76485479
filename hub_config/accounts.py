"""Local accounts: NativeAuthenticator, with who may log in and their roles from the catalogue.

Why NativeAuthenticator: it is JupyterHub's own project for local accounts; it keeps bcrypt
hashes in the hub database (a hub password is not a shell login on the service node, unlike
PAM), locks an account after repeated failures, refuses short and common passwords, lets users
change their password, and works whether or not the hub runs as root. Sign-up is off: people
come from course folders.
"""

from __future__ import annotations

from pathlib import Path

import bcrypt
from jupyterhub.auth import Authenticator
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.handlers import ChangePasswordAdminHandler, ChangePasswordHandler
from nativeauthenticator.orm import UserInfo
from traitlets import Unicode

from .appliers.access import instructor_role, roles_of
from .catalogue import Catalogue, LiveCatalogue
from .schema import is_reserved
from .secrets import read_demo_logins


class CatalogueAuthenticator(NativeAuthenticator):
    site_file = Unicode(help="Site file whose catalogue says who may log in.").tag(config=True)
    demo_logins_file = Unicode(
        "", help="If set, accounts listed there (username password) are created on start."
    ).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self._live = LiveCatalogue(self.site_file, self.log)
        self._seed_demo_accounts()

    def catalogue(self) -> Catalogue:
        return self._live.current()

    def _seed_demo_accounts(self) -> None:
        if not self.demo_logins_file or not Path(self.demo_logins_file).exists():
            return
        for name, password in read_demo_logins(Path(self.demo_logins_file)).items():
            if UserInfo.find(self.db, name) is None and not is_reserved(name):
                hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
                self.db.add(UserInfo(username=name, password=hashed, is_authorized=True))
        self.db.commit()

    def get_handlers(self, app):
        # JupyterHub's own login page: NativeAuthenticator 1.3's login handler fails under
        # JupyterHub 6 (it uses the removed handler.statsd). Its authenticate() still does the
        # lockout; sign-up and approval pages are left out (people come from course folders).
        return Authenticator.get_handlers(self, app) + [
            (r"/change-password", ChangePasswordHandler),
            (r"/change-password/([^/]+)", ChangePasswordAdminHandler),
        ]

    def check_blocked_users(self, username, authentication=None):
        # The catalogue never lists a system account's name; this holds whatever else lists one
        # (Authenticator.admin_users or allowed_users set in a drop-in, an old demo-logins line).
        if is_reserved(username):
            self.log.warning("Login refused: %r is the name of a system or service account", username)
            return False
        return super().check_blocked_users(username, authentication)

    async def check_allowed(self, username, authentication=None):
        return not is_reserved(username) and username in self.catalogue().people()

    def _auth_model(self, username: str, catalogue: Catalogue) -> dict:
        # With manage_roles the model lists every role the user keeps, JupyterHub's defaults too,
        # by name only: a full definition would reset the user role to "self" and drop the scopes
        # the hub adds to it (JupyterHub.extra_user_scopes: the exchange service's access).
        kept = {"user"} | ({"admin"} if username in self.admin_users else set())
        defaults = [{"name": name} for name in sorted(kept)]
        return {"name": username, "roles": defaults + roles_of(username, catalogue)}

    async def authenticate(self, handler, data):
        self._seed_demo_accounts()  # people of a course added since start (sync adds their line)
        username = await super().authenticate(handler, data)
        return self._auth_model(username, self.catalogue()) if username else None

    async def refresh_user(self, user, handler=None):
        catalogue = self.catalogue()
        if user.name not in catalogue.people():
            return False  # removed from every course: log in again, which check_allowed refuses
        return self._auth_model(user.name, catalogue)

    async def load_managed_roles(self):
        return [{**instructor_role(c), "users": list(c.instructors)} for c in self.catalogue().courses]
