"""Authentication kind ldap: the Mesolys directory (hub_config/login/ldap.py, DirectoryLogin).

The service account's password stays in its file: the Config holds the file's path, which
DirectoryLogin reads at each connection, so `ailys render` and the hub's log never show it.

With ``local_accounts`` (the default) trainees' local accounts log in on the same password form:
a name with a local account (NativeAuthenticator's, made by the cohorts' invitations) is checked
locally, every other name against the directory. A local account never shadows a directory account
of the same name: whoever makes local accounts refuses a name the directory holds. Demo accounts
are for the local kind: DirectoryLogin does not seed them (they would shadow the directory).
"""

from traitlets.config import Config

from ..catalogue import Catalogue
from ..directory import host_and_port

TLS_STRATEGY = {"starttls": "before_bind", "ldaps": "on_connect", "none": "insecure"}


def apply_ldap(c: Config, catalogue: Catalogue) -> None:
    ldap = catalogue.site.authentication.ldap
    c.JupyterHub.authenticator_class = "hub_config.login.ldap.DirectoryLogin"
    host, port = host_and_port(ldap.uri)
    c.LDAPAuthenticator.server_address = host
    c.LDAPAuthenticator.server_port = port
    c.LDAPAuthenticator.tls_strategy = TLS_STRATEGY[ldap.tls]
    if ldap.ca_file:
        c.LDAPAuthenticator.tls_kwargs = {"ca_certs_file": str(ldap.ca_file)}
    c.LDAPAuthenticator.user_search_base = ldap.user_base
    c.LDAPAuthenticator.user_attribute = ldap.user_attribute
    if ldap.bind_dn_template:
        c.LDAPAuthenticator.bind_dn_template = [ldap.bind_dn_template]
    else:
        c.LDAPAuthenticator.lookup_dn = True
    if ldap.service_dn:  # searches people (without a bind template) and checks them at each refresh
        c.LDAPAuthenticator.lookup_dn_search_user = ldap.service_dn
        c.DirectoryLogin.service_password_file = str(ldap.service_password_file)
    c.DirectoryLogin.active_filter = ldap.active_filter
    c.DirectoryLogin.timeout = ldap.timeout
    c.DirectoryLogin.local_accounts = catalogue.site.authentication.local_accounts
