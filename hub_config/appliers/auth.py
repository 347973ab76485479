"""Who may log in, and how: local accounts whose passwords the hub keeps."""

from traitlets.config import Config

from ..catalogue import Catalogue
from ..secrets import Secrets
from .ldap import apply_ldap
from .oidc import apply_oidc


def apply_auth(c: Config, catalogue: Catalogue, secrets: Secrets) -> None:
    auth = catalogue.site.authentication
    c.JupyterHub.authenticator_class = "hub_config.login.local.LocalLogin"
    c.Authenticator.admin_users = set(auth.admin_users)
    # Known at start, so they hold JupyterHub's 'user' role from the start, logged in or not.
    c.Authenticator.allowed_users = set(catalogue.people())
    # Who may log in and which roles they hold are read from the catalogue at each login
    # and refresh (hub_config/login/rules.py), so a new course needs no restart.
    c.CatalogueRules.site_file = str(catalogue.site_file)
    c.Authenticator.manage_roles = True
    # On start, course roles and their holders are exactly what the catalogue says.
    c.Authenticator.reset_managed_roles_on_startup = True
    # A refresh refuses a closed access window (rules.py) and sends a browser to the login page:
    # no later than the sync that stops the trainee's servers and revokes their tokens.
    c.Authenticator.auth_refresh_age = min(300, catalogue.site.courses_sync_every)
    c.NativeAuthenticator.enable_signup = False
    c.NativeAuthenticator.check_common_password = True
    c.NativeAuthenticator.minimum_password_length = auth.minimum_password_length
    c.NativeAuthenticator.allowed_failed_logins = auth.allowed_failed_logins
    c.NativeAuthenticator.seconds_before_next_try = auth.lockout
    if auth.demo_accounts:
        c.LocalLogin.demo_logins_file = str(secrets.demo_logins_file)
    # The kind's own settings come last: they may replace the authenticator class.
    if auth.kind == "ldap":
        apply_ldap(c, catalogue)
    elif auth.kind == "oidc":
        apply_oidc(c, catalogue)
