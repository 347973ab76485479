"""Institutional single sign-on (authentication.kind oidc): oauthenticator's GenericOAuthenticator,
with who may log in and their roles from the catalogue (CatalogueRules).

What this adds to GenericOAuthenticator, and why:

- The provider's discovery document (OidcSettings.discovery_url) is read here, at start, not
  by the applier: oauthenticator does not read one itself (jupyterhub#2462), and an applier is a
  pure function of the site files (``ailys render`` must not need the provider). If the provider
  does not answer at start, the hub still starts and each sign-in tries again, answering "identity
  provider unavailable" meanwhile.
- The client secret is read from OidcSettings.client_secret_file here, so it is never a value of
  the traitlets Config (which ``ailys render`` prints) nor of any environment.
- The ID token is checked (signature against the provider's keys, issuer, audience = our client
  id, expiry) and its subject must be the userinfo's: GenericOAuthenticator trusts the userinfo
  endpoint alone.
- The username claim is mapped to a Unix name (``unix_name``); a claim that cannot be mapped is
  refused with a message, and a name already held by another subject of the provider (kept in
  <data_dir>/rosters/oidc-names.json) is refused too, so two people never share an account.
- The groups claim is recorded at each login in <data_dir>/rosters/oidc.json (that person's
  memberships only), where courses' learners_from.oidc_group find them (hub_config/roster.py).
  JupyterHub's own groups stay the course groups of the sync: manage_groups is off.
- Logout ends the hub session, then sends the person to the provider's end_session_endpoint
  (when it has one) so that the next sign-in asks for their password again.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import re
import threading
import unicodedata
from pathlib import Path
from urllib.parse import urlencode

import httpx
import jwt
from oauthenticator.generic import GenericOAuthenticator
from oauthenticator.oauth2 import OAuthLoginHandler, OAuthLogoutHandler
from tornado import web
from tornado.httpclient import HTTPClientError
from traitlets import Float, Unicode

from .. import roster
from .rules import CatalogueRules

NAMES_FILE = "oidc-names.json"  # <data_dir>/rosters/: {unix name: provider subject}
# Asymmetric signatures only: an HMAC alg would make the client secret the key.
SIGNING_ALGS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
_NAME = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")  # schema.types.Username


class Refused(web.HTTPError):
    """A sign-in refused with a message the person reads on JupyterHub's error page."""

    def __init__(self, message: str, status: int = 403):
        self.jupyterhub_message = message
        # the page's title (and the HTTP reason phrase, hence ASCII); the message is below it
        title = "Sign-in refused" if status < 500 else "Identity provider unavailable"
        super().__init__(status, message, reason=title)


class UnmappableName(ValueError):
    """The username claim cannot become a Unix name; the message says why."""


def unix_name(claim: str) -> str:
    """The Unix name of a username claim: lowercase, without an @domain, accents dropped, every
    other character outside [a-z0-9_-] (dots, spaces...) as '-', and 'u' before a leading digit
    (student numbers). UnmappableName if nothing is left or it is over 32 characters (cutting
    would make two people one)."""
    local = str(claim).strip().split("@", 1)[0]
    ascii_ = unicodedata.normalize("NFKD", local).encode("ascii", "ignore").decode()
    name = re.sub(r"[^a-z0-9_-]+", "-", ascii_.lower()).strip("-")
    if name[:1].isdigit():
        name = f"u{name}"
    if not name:
        raise UnmappableName(f"{claim!r} has no letter or digit to make a login name of")
    if not _NAME.match(name):
        raise UnmappableName(f"{claim!r} gives {name!r}, longer than the 32 characters of a login name")
    return name


def read_secret(path: str, what: str) -> str:
    """A secret file's first line; an error naming the file and the setting if it cannot be."""
    try:
        value = Path(path).read_text(encoding="utf-8").strip()
    except OSError as err:
        raise ValueError(f"{what}: cannot read {path}: {err.strerror}") from None
    if not value:
        raise ValueError(f"{what}: {path} is empty")
    return value


# --- the name -> subject map and the groups, in the site's data ------------------------------

_lock = threading.Lock()


@contextlib.contextmanager
def locked_rosters(data_dir: Path):
    """Read-modify-write of the roster files: one writer at a time, threads and processes."""
    folder = Path(data_dir) / roster.ROSTERS
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    with _lock, open(folder / ".oidc.lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        yield folder


def _read(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except ValueError as err:
        raise ValueError(f"{path}: not the JSON the hub writes ({err})") from None


def holder_of(data_dir: Path, name: str) -> str | None:
    """The provider subject that holds ``name``, if any (read again only when the file changed)."""
    return roster.read_json_cached(Path(data_dir) / roster.ROSTERS / NAMES_FILE, {}).get(name)


def claim_name(data_dir: Path, name: str, subject: str) -> str | None:
    """Give ``name`` to ``subject`` if nobody holds it; the other holder's subject if one does."""
    if holder_of(data_dir, name) == subject:  # a returning person, every login: no lock, no write
        return None
    with locked_rosters(data_dir) as folder:
        names = _read(folder / NAMES_FILE)
        holder = names.setdefault(name, subject)
        if holder != subject:
            return holder
        roster.write_json(folder / NAMES_FILE, dict(sorted(names.items())))
    return None


def with_memberships(groups: dict[str, list[str]], name: str, memberships) -> dict[str, list[str]]:
    """``groups`` ({group: [names]}) where ``name`` is in exactly ``memberships``."""
    memberships = set(memberships)
    updated = {g: sorted(set(people) - {name}) for g, people in groups.items()}
    for group in memberships:
        updated[group] = sorted({*updated.get(group, []), name})
    return {g: people for g, people in sorted(updated.items()) if people}


def record_groups(data_dir: Path, name: str, memberships) -> bool:
    """Record ``name``'s provider groups (roster source oidc); True if anything changed."""
    known = roster.read_json_cached(Path(data_dir) / roster.ROSTERS / "oidc.json", {})
    if with_memberships(known, name, memberships) == known:  # a returning person: no lock, no write
        return False
    with locked_rosters(data_dir) as folder:
        groups = _read(folder / "oidc.json")
        return roster.write_groups(data_dir, "oidc", with_memberships(groups, name, memberships))


def groups_in(claim) -> list[str]:
    """A groups claim as a list of names (a provider may send one string, or nothing)."""
    if claim is None:
        return []
    if isinstance(claim, str):
        return [claim]
    if isinstance(claim, list | tuple) and all(isinstance(g, str) for g in claim):
        return list(claim)
    raise Refused(f"The provider's groups claim is not a list of names: {claim!r}")


# --- the ID token --------------------------------------------------------------------------


def check_id_token(id_token: str, keys: jwt.PyJWKSet, *, issuer: str, client_id: str, leeway: float) -> dict:
    """The ID token's claims if it is signed by one of ``keys``, by ``issuer``, for
    ``client_id`` and not expired; Refused saying which check failed."""
    try:
        header = jwt.get_unverified_header(id_token)
        alg = header.get("alg")
        if alg not in SIGNING_ALGS:
            raise Refused(f"The provider's ID token is signed with {alg!r}, not an algorithm we accept")
        key = next((k for k in keys.keys if k.key_id == header.get("kid")), None)
        if key is None and len(keys.keys) == 1 and not header.get("kid"):
            key = keys.keys[0]
        if key is None:
            raise Refused(f"The provider's ID token is signed by an unknown key {header.get('kid')!r}")
        return jwt.decode(
            id_token,
            key=key,
            algorithms=[alg],
            audience=client_id,
            issuer=issuer,
            leeway=leeway,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
    except jwt.ExpiredSignatureError:
        raise Refused("The provider's ID token has expired: sign in again.") from None
    except jwt.InvalidAudienceError:
        raise Refused(
            f"The provider's ID token was issued for another application, not {client_id!r}."
        ) from None
    except jwt.InvalidIssuerError:
        raise Refused(f"The ID token was not issued by {issuer}.") from None
    except jwt.PyJWTError as err:
        raise Refused(f"The provider's ID token is not valid: {err}") from None


# --- handlers ------------------------------------------------------------------------------


class SingleSignOnLogin(OAuthLoginHandler):
    async def get(self):
        await self.authenticator.discover()  # the provider was down at start: try again now
        return super().get()


class SingleSignOnLogout(OAuthLogoutHandler):
    """Ends the hub session (JupyterHub's logout: cookie cleared, the session's tokens deleted),
    then, for a person who signed in through the provider, its end_session_endpoint."""

    async def handle_logout(self):
        await super().handle_logout()
        user = self.current_user  # still known here; cleared before the page is rendered
        self._signed_in_by_provider = bool(user) and self.authenticator.is_provider_name(user.name)

    async def render_logout_page(self):
        end_session = self.authenticator.end_session_url
        if getattr(self, "_signed_in_by_provider", False) and end_session:
            back = f"{self.request.protocol}://{self.request.host}{self.settings['login_url']}"
            query = {"client_id": self.authenticator.client_id, "post_logout_redirect_uri": back}
            self.redirect(f"{end_session}?{urlencode(query)}")
            return
        await super().render_logout_page()


class SingleSignOn(CatalogueRules, GenericOAuthenticator):
    login_handler = SingleSignOnLogin
    logout_handler = SingleSignOnLogout

    discovery_url = Unicode(help="The provider's /.well-known/openid-configuration.").tag(config=True)
    client_secret_file = Unicode(help="File holding the client secret (read at start).").tag(config=True)
    groups_claim = Unicode("", help="Claim listing the person's groups ('' for none).").tag(config=True)
    id_token_leeway = Float(30, help="Seconds of clock difference allowed with the provider.").tag(
        config=True
    )
    discovery_timeout = Float(10, help="Longest wait for the discovery document (s).").tag(config=True)

    end_session_url = ""
    issuer = ""
    _jwks_uri = ""
    _keys: jwt.PyJWKSet | None = None

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        if self.client_secret_file:
            self.client_secret = read_secret(
                self.client_secret_file, "authentication.oidc.client_secret_file"
            )
        try:
            self._read_discovery(httpx.get(self.discovery_url, timeout=self.discovery_timeout))
        except (httpx.HTTPError, Refused) as err:
            self.log.error("Identity provider unavailable at start, sign-ins will try again: %s", err)

    # --- the provider's endpoints ----------------------------------------------------------

    def _read_discovery(self, response: httpx.Response) -> None:
        url = self.discovery_url
        if response.status_code != 200:
            raise Refused(f"{url} answered {response.status_code}", 503)
        try:
            doc = response.json()
            issuer, authorize, token = doc["issuer"], doc["authorization_endpoint"], doc["token_endpoint"]
            userinfo, jwks_uri = doc["userinfo_endpoint"], doc["jwks_uri"]
        except (ValueError, KeyError, TypeError) as err:
            raise Refused(f"{url} is not an OpenID discovery document (missing {err})", 503) from None
        self.issuer, self.authorize_url, self.token_url, self.userdata_url = (
            issuer,
            authorize,
            token,
            userinfo,
        )
        self._jwks_uri = jwks_uri
        self.end_session_url = doc.get("end_session_endpoint", "")
        # client_secret_basic is the default method of OpenID Connect when a provider lists none
        methods = doc.get("token_endpoint_auth_methods_supported", ["client_secret_basic"])
        self.basic_auth = "client_secret_basic" in methods
        self.log.info("Identity provider %s: endpoints read from %s", issuer, url)

    async def discover(self) -> None:
        if self.issuer:
            return
        try:
            async with httpx.AsyncClient(timeout=self.discovery_timeout) as client:
                response = await client.get(self.discovery_url)
        except httpx.HTTPError as err:
            raise self.unavailable(self.discovery_url, err) from None
        self._read_discovery(response)

    async def _signing_keys(self, refresh: bool = False) -> jwt.PyJWKSet:
        if self._keys is None or refresh:
            try:
                body = await self.httpfetch(self._jwks_uri, "fetching the provider's keys", method="GET")
            except (HTTPClientError, OSError) as err:
                raise self.unavailable(self._jwks_uri, err) from None
            self._keys = jwt.PyJWKSet.from_dict(body)
        return self._keys

    # --- from tokens to a person -------------------------------------------------------------

    async def get_token_info(self, handler, params):
        await self.discover()
        try:
            return await super().get_token_info(handler, params)
        except HTTPClientError as err:
            if err.code is not None and 400 <= err.code < 500:
                refusal = _provider_error(err)
                raise Refused(
                    f"The identity provider refused this sign-in: {refusal}. Sign in again."
                ) from None
            raise self.unavailable(self.token_url, err) from None
        except OSError as err:  # connection refused, reset, timed out
            raise self.unavailable(self.token_url, err) from None

    def unavailable(self, url: str, err: Exception) -> Refused:
        self.log.error("Identity provider unavailable: %s: %s", url, err)
        return Refused(
            "Service d'identité indisponible / Identity provider unavailable "
            f"({url}: {err.__class__.__name__}). Try again later.",
            503,
        )

    async def token_to_user(self, token_info):
        try:
            user_info = await super().token_to_user(token_info)
        except (HTTPClientError, OSError) as err:
            raise self.unavailable(self.userdata_url, err) from None
        if not token_info.get("id_token"):
            raise Refused("The provider sent no ID token (is the 'openid' scope asked for?)")
        keys = await self._signing_keys()
        kid = jwt.get_unverified_header(token_info["id_token"]).get("kid")
        if kid and kid not in {k.key_id for k in keys.keys}:
            keys = await self._signing_keys(refresh=True)  # the provider rotated its keys
        args = {"issuer": self.issuer, "client_id": self.client_id, "leeway": self.id_token_leeway}
        claims = check_id_token(token_info["id_token"], keys, **args)
        if user_info.get("sub") != claims["sub"]:
            raise Refused("The provider's userinfo is about another person than its ID token")
        return user_info

    def user_info_to_username(self, user_info):
        claim = user_info.get(self.username_claim) if isinstance(self.username_claim, str) else None
        if not claim:
            raise Refused(f"The provider gave no {self.username_claim!r} claim to make a login name of")
        try:
            return unix_name(claim)
        except UnmappableName as err:
            self.log.warning("Sign-in refused: %s", err)
            raise Refused(f"Your login name from the provider cannot be used here: {err}.") from None

    async def update_auth_model(self, auth_model):
        # Before check_allowed: the groups may be what puts the person in a course.
        name, user_info = auth_model["name"], auth_model["auth_state"][self.user_auth_state_key]
        self.refuse_if_taken(name, user_info["sub"])
        if self.groups_claim:
            memberships = groups_in(user_info.get(self.groups_claim))
            if record_groups(self.catalogue().data_dir, name, memberships):
                self.log.info("Provider groups of %s: %s", name, ", ".join(sorted(memberships)) or "none")
        return auth_model

    def refuse_if_taken(self, name: str, subject: str) -> None:
        holder = holder_of(self.catalogue().data_dir, name)
        if holder is not None and holder != subject:
            self.log.warning("Sign-in refused: %r is held by subject %s, not %s", name, holder, subject)
            raise Refused(
                f"The login name {name!r} already belongs to another person of the identity provider. "
                "Ask the site's administrators to tell you apart."
            )

    async def check_allowed(self, username, authentication=None):
        allowed = await super().check_allowed(username, authentication)
        if (
            allowed
            and authentication
            and self.user_auth_state_key in (authentication.get("auth_state") or {})
        ):
            subject = authentication["auth_state"][self.user_auth_state_key]["sub"]
            if claim_name(self.catalogue().data_dir, username, subject) is not None:  # lost a race
                self.refuse_if_taken(username, subject)
        return allowed

    def is_provider_name(self, name: str) -> bool:
        return holder_of(self.catalogue().data_dir, name) is not None


def _provider_error(err: HTTPClientError) -> str:
    """The OAuth error of a token endpoint's answer (RFC 6749 5.2), for the person to read."""
    try:
        body = json.loads(err.response.body)
        error, description = body["error"], body.get("error_description", "")
    except (AttributeError, ValueError, KeyError, TypeError):
        return str(err)
    # Providers say little more than the code (oidc-provider: "grant request is invalid").
    meaning = GRANT_ERRORS.get(error, description)
    return f"{error} ({meaning})" if meaning else error


GRANT_ERRORS = {
    "invalid_grant": "the sign-in code has expired, was used already, or was issued to another application",
    "invalid_client": "the provider does not accept this hub's client id and secret",
    "unauthorized_client": "this hub's client may not use this kind of sign-in at the provider",
}
