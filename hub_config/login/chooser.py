"""One login page offering single sign-on and local accounts (authentication.kind oidc with
local_accounts: institutional people through their provider, trainees and guests with the
passwords the hub keeps).

A thin chooser of our own rather than MultiAuthenticator: JupyterHub 6 ships none (the
jupyterhub-multiauthenticator package is a separate project, not installed), and that one gives
each authenticator its own URL prefix and login page, renames users per authenticator unless
told not to, and calls each one's checks its own way. Here one authenticator class inherits both
(SingleSignOn first, then LocalLogin), so CatalogueRules' checks (check_allowed, the access
windows, roles at login and refresh) run once, the same way, on both paths; only
``authenticate`` is told which path a request came by: the provider's callback, or the form.

The page is our login page (hub_config/templates/login.html, in the visitor's language), which
shows the single sign-on button (``sso_choice``) above the local form.
"""

from __future__ import annotations

from jupyterhub.auth import Authenticator
from nativeauthenticator import NativeAuthenticator
from nativeauthenticator.orm import UserInfo
from oauthenticator.oauth2 import OAuthCallbackHandler

from .local import LocalLogin
from .oidc import Refused, SingleSignOn, holder_of


class SingleSignOnOrLocal(SingleSignOn, LocalLogin):
    def login_url(self, base_url):
        return Authenticator.login_url(self, base_url)  # the page with both, not the provider

    def get_custom_html(self, base_url):
        return ""  # hub_config/templates/login.html shows both ways in, in the visitor's language

    def sso_choice(self, base_url) -> dict:
        """The provider's button of the login page: its URL and label."""
        return {"url": SingleSignOn.login_url(self, base_url), "label": self.login_service}

    def get_handlers(self, app):
        # JupyterHub's login page and NativeAuthenticator's password pages (LocalLogin's), then
        # the provider's login, callback and logout (SingleSignOn's /logout replaces none).
        return LocalLogin.get_handlers(self, app) + SingleSignOn.get_handlers(self, app)

    async def authenticate(self, handler, data=None):
        if isinstance(handler, OAuthCallbackHandler):
            return await SingleSignOn.authenticate(self, handler, data)
        self._seed_demo_accounts()
        return await NativeAuthenticator.authenticate(self, handler, data)

    def _seed_demo_accounts(self) -> None:
        # Demo accounts are for the local kind: seeded for every person of the catalogue, they
        # would make local accounts of the names the provider's people sign in with.
        return

    def refuse_if_taken(self, name: str, subject: str) -> None:
        # A local account's name is never handed to a provider's person: it would be a way in.
        # Checked until the name is this person's (then cohort import never makes it a local one).
        mine = holder_of(self.catalogue().data_dir, name) == subject
        if not mine and UserInfo.find(self.db, name) is not None:
            self.log.warning("Sign-in refused: %r is a local account; provider subject %s", name, subject)
            raise Refused(
                f"The login name {name!r} is a local account of this hub. "
                "Sign in with its password, or ask the site's administrators."
            )
        super().refuse_if_taken(name, subject)

    def add_user(self, user):
        # OAuthenticator's (adds to allowed_users only with allow_existing_users) and
        # NativeAuthenticator's (none) differ only there; the catalogue decides who is allowed.
        return Authenticator.add_user(self, user)
