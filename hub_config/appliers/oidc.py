"""Authentication kind oidc: institutional single sign-on (hub_config/login/oidc.py), and with
``local_accounts`` one login page for it and local accounts (hub_config/login/chooser.py).

Pure: the provider's endpoints are read by the authenticator when the hub starts, from
``discovery_url``, and the client secret from its file, so neither network nor secret is
needed to render the configuration; only the secret file's path is set here.
"""

from traitlets.config import Config

from ..catalogue import Catalogue

SINGLE_SIGN_ON = "hub_config.login.oidc.SingleSignOn"
WITH_LOCAL_ACCOUNTS = "hub_config.login.chooser.SingleSignOnOrLocal"


def apply_oidc(c: Config, catalogue: Catalogue) -> None:
    auth = catalogue.site.authentication
    oidc = auth.oidc
    c.JupyterHub.authenticator_class = WITH_LOCAL_ACCOUNTS if auth.local_accounts else SINGLE_SIGN_ON
    c.SingleSignOn.discovery_url = oidc.discovery_url
    # a relative path is the site file's folder's, as the site's other files
    c.SingleSignOn.client_secret_file = str(catalogue.site_file.parent / oidc.client_secret_file)
    c.SingleSignOn.groups_claim = oidc.groups_claim or ""
    c.GenericOAuthenticator.client_id = oidc.client_id
    c.GenericOAuthenticator.username_claim = oidc.username_claim
    c.GenericOAuthenticator.scope = list(oidc.scopes)
    c.GenericOAuthenticator.login_service = oidc.button_label
    c.GenericOAuthenticator.enable_pkce = True
    c.GenericOAuthenticator.validate_server_cert = True
    # JupyterHub's groups are the course groups of the sync; provider groups go to the roster.
    c.GenericOAuthenticator.manage_groups = False
    # Tokens are not kept (no auth_state: it would need a key in the hub's environment); the
    # catalogue's refresh (CatalogueRules) still ends a session whose person left every course.
    c.GenericOAuthenticator.enable_auth_state = False
    c.GenericOAuthenticator.custom_403_message = (
        "Vous n'êtes inscrit·e à aucun cours de ce hub / You are on no course of this hub. "
        "Ask your instructor to add you."
    )
