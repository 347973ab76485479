"""The Mesolys directory: people log in with their LDAP account (jupyterhub-ldapauthenticator's
settings), with who may log in and their roles from the catalogue (rules.py).

LDAPAuthenticator's own ``authenticate`` is replaced, not extended: it runs ldap3's blocking calls
on the hub's event loop (a directory that does not answer would freeze every page for its TCP
timeout), turns an unreachable directory into a traceback, and takes the service account's
password as a setting, which ``ailys render`` would print. Its settings (server_address,
server_port, tls_strategy, tls_kwargs, bind_dn_template, lookup_dn, lookup_dn_search_user,
user_search_base, user_attribute, valid_username_regex) keep their meaning; the directory work is
hub_config/directory.py, in a thread.

At login: find the person's DN (bind_dn_template, or a search with the service account), bind as
that DN with the password, then require ``active_filter`` (by default: shadowExpire not passed). At
each auth refresh (Authenticator.auth_refresh_age) the service account checks the account again:
one disabled in the directory is refused at their next refresh, which sends a browser back to the
login page. Without a service account the refresh cannot look, and only the next login refuses.

The directory unreachable: a login gets a 503 page "identity service unavailable" in French and
English (``IdentityServiceUnavailable``), the hub logs one line why, never a traceback; a refresh
keeps the session and logs a warning, so that a directory that blinks does not log everyone out
and the learners' running servers go on answering.

Local accounts (``local_accounts``, trainees of short courses): NativeAuthenticator's accounts in
the hub database, checked on the same login form. A name that has a local account is checked
locally only, every other name against the directory only: one password per person, and no
fallback that would let a local password open a directory account. Who makes local accounts (the
cohorts' invitations) must refuse a name the directory holds, so that a local account never
shadows a directory account.
"""

from __future__ import annotations

import asyncio
import re

from ldap3.utils.dn import escape_rdn
from ldapauthenticator import LDAPAuthenticator
from ldapauthenticator.ldapauthenticator import TlsStrategy
from tornado import web
from traitlets import Bool, Integer, Unicode

from ..directory import Directory, DirectoryUnavailable
from .rules import CatalogueRules

UNAVAILABLE = (
    "Service d'identification indisponible : réessayez dans quelques minutes. / "
    "Identity service unavailable: please try again in a few minutes."
)
DISABLED = (
    "Votre compte de l'annuaire Mesolys est désactivé ; adressez-vous au support Mesolys. / "
    "Your Mesolys directory account is disabled; please contact Mesolys support."
)
TLS_MODES = {
    TlsStrategy.before_bind: "starttls",
    TlsStrategy.on_connect: "ldaps",
    TlsStrategy.insecure: "none",
}


class IdentityServiceUnavailable(web.HTTPError):
    """Login impossible now: the directory does not answer. JupyterHub shows ``jupyterhub_message``."""

    def __init__(self):
        self.jupyterhub_message = UNAVAILABLE
        self.headers = {"Retry-After": "60"}  # JupyterHub's error page sends an exception's headers
        super().__init__(503, UNAVAILABLE)


class AccountDisabled(web.HTTPError):
    """The password is right but the account does not match the active filter."""

    def __init__(self):
        self.jupyterhub_message = DISABLED
        super().__init__(403, DISABLED)


class DirectoryLogin(CatalogueRules, LDAPAuthenticator):
    service_password_file = Unicode(
        "",
        help="File holding the service account's (lookup_dn_search_user) password, read at each "
        "connection; never the password itself.",
    ).tag(config=True)
    active_filter = Unicode(
        "(|(!(shadowExpire=*))(shadowExpire>={today}))",
        help="LDAP filter an account must match at login and at each auth refresh; {today}: days since 1970.",
    ).tag(config=True)
    timeout = Integer(5, min=1, help="Seconds to wait for the directory before 'unavailable'.").tag(
        config=True
    )
    local_accounts = Bool(
        False, help="Also check local accounts (NativeAuthenticator) on the same login form."
    ).tag(config=True)

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.local = None
        if self.local_accounts:
            from nativeauthenticator import NativeAuthenticator

            # Its settings come from the NativeAuthenticator section of the same config; the hub's
            # database session is handed over as JupyterHub hands it to its authenticator.
            self.local = NativeAuthenticator(parent=self, db=self._deprecated_db_session)
        if not self.directory().has_service_account:
            self.log.warning(
                "LDAP without a service account: a disabled directory account is refused at its "
                "next login, not at the auth refresh of a session already open"
            )

    def directory(self) -> Directory:
        return Directory(
            host=self.server_address,
            port=self.server_port,
            tls=TLS_MODES[self.tls_strategy],
            user_base=self.user_search_base or "",
            user_attribute=self.user_attribute or "uid",
            ca_file=self.tls_kwargs.get("ca_certs_file"),
            timeout=self.timeout,
            service_dn=self.lookup_dn_search_user,
            service_password_file=self.service_password_file or None,
        )

    def has_local_account(self, username: str) -> bool:
        return self.local is not None and self.local.get_user(username) is not None

    # --- login ---------------------------------------------------------------------------

    async def authenticate(self, handler, data):
        username = self.normalize_username(data.get("username") or "")
        password = data.get("password") or ""
        if self.has_local_account(username):
            return await self.local.authenticate(handler, data)
        if not re.match(self.valid_username_regex, username) or not password.strip():
            return None
        try:
            found = await asyncio.to_thread(self._bind_and_check, username, password)
        except DirectoryUnavailable as err:
            self.log.error("Login of %s impossible, the directory does not answer: %s", username, err)
            raise IdentityServiceUnavailable() from None
        return {"name": username} if found else None

    def _candidate_dns(self, directory: Directory, service, username: str) -> list[str]:
        if self.lookup_dn:
            dn = directory.find(service, username)
            return [dn] if dn else []
        return [t.format(username=escape_rdn(username)) for t in self.bind_dn_template]

    def _bind_and_check(self, username: str, password: str) -> bool:
        """In a thread: the person's DN, a bind with their password, then the active filter.
        False for an unknown name or a wrong password; AccountDisabled if inactive."""
        directory = self.directory()
        service = directory.service() if directory.has_service_account else None
        try:
            for dn in self._candidate_dns(directory, service, username):
                conn = directory.connect(dn, password)
                if conn is None:
                    continue
                try:  # the service account reads shadowExpire; without one, the person's own entry
                    active = directory.is_active(service or conn, dn, self.active_filter)
                finally:
                    conn.unbind()
                if not active:
                    self.log.warning("Login refused: the directory account of %s is disabled", username)
                    raise AccountDisabled()
                return True
            self.log.warning("Login failed: no directory account %s, or a wrong password", username)
            return False
        finally:
            if service is not None:
                service.unbind()

    # --- refresh -------------------------------------------------------------------------

    async def refresh_user(self, user, handler=None):
        refreshed = await super().refresh_user(user, handler)  # the catalogue's rules and roles
        if not refreshed or self.has_local_account(user.name) or not self.directory().has_service_account:
            return refreshed
        try:
            active = await asyncio.to_thread(self._still_active, user.name)
        except DirectoryUnavailable as err:
            self.log.warning(
                "Directory unavailable at the auth refresh of %s, session kept: %s", user.name, err
            )
            return refreshed
        if not active:
            self.log.warning("%s's directory account is disabled or gone: they must log in again", user.name)
            return False
        return refreshed

    def _still_active(self, username: str) -> bool:
        directory = self.directory()
        service = directory.service()
        try:
            dns = self._candidate_dns(directory, service, username)
            return any(directory.is_active(service, dn, self.active_filter) for dn in dns)
        finally:
            service.unbind()
