"""A real OpenID Connect provider on loopback: panva's oidc-provider (OpenID Certified) on the
Node.js the proxy already needs, with static clients and test users (oidc_provider/provider.mjs).

It is installed by the test run itself, with npm, from the pinned package.json and its lock,
into var/cache/oidc-provider/<hash of the lock> of the checkout (once per lock; a lock file
serialises two xdist workers installing at the same time). Plain HTTP on 127.0.0.1: oidc-provider
accepts an http issuer and http redirect URIs for the code flow, so no test CA is needed.

    with OidcProvider([TestUser("oi-ada", "pw", groups=["ml"])], [client]) as op:
        op.discovery_url, op.login(...)

The provider checks passwords on its own login page (devInteractions, which accepts any, is
off), requires PKCE, and its tokens live ``ttl`` seconds (the authorization code 5 s by
default, so a test can let one expire). Stopped by the PID it was started with.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import tempfile
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlparse

import httpx

from tests.services import free_port, log_tail
from tests.services.hub import wait_until

HERE = Path(__file__).resolve().parent / "oidc_provider"
CHECKOUT = HERE.parents[2]
CACHE = CHECKOUT / "var" / "cache" / "oidc-provider"
MODULE = Path("node_modules") / "oidc-provider" / "lib" / "index.js"
NODE_NEEDED = (20, 19)  # oidc-provider 9 (its jose 6 and koa 3)


class ProviderUnavailable(RuntimeError):
    """Node.js or npm is missing, or the install failed: the reason is the message."""


def install() -> Path:
    """oidc-provider's entry module, installed (npm ci) into the cache if it is not yet."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if not node or not npm:
        raise ProviderUnavailable(
            "node and npm are needed for the OpenID provider (apt-get install nodejs npm)"
        )
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout.strip()
    major, minor = (int(x) for x in re.findall(r"\d+", version)[:2])
    if (major, minor) < NODE_NEEDED:
        raise ProviderUnavailable(f"oidc-provider 9 needs Node.js 20.19 or later; {node} is {version}")
    lock = (HERE / "package-lock.json").read_bytes()
    folder = CACHE / hashlib.sha256(lock).hexdigest()[:12]
    module = folder / MODULE
    if module.exists():
        return module
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".install-lock", "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)  # another worker may be installing it now
        if module.exists():
            return module
        for name in ("package.json", "package-lock.json"):
            shutil.copy(HERE / name, folder / name)
        argv = [npm, "ci", "--omit=dev", "--no-audit", "--no-fund", "--loglevel=error"]
        try:
            result = subprocess.run(argv, cwd=folder, capture_output=True, text=True, timeout=300)
        except subprocess.TimeoutExpired:
            raise ProviderUnavailable(f"npm ci of oidc-provider in {folder} took over 300 s") from None
        if result.returncode != 0 or not module.exists():
            tail = (result.stderr or result.stdout).strip()[-2000:]
            raise ProviderUnavailable(f"npm ci of oidc-provider in {folder} failed: {tail}")
    return module


@dataclasses.dataclass
class TestUser:
    """A person at the provider: ``login`` and ``password`` on its login page, and the claims it
    gives (sub defaults to a random subject; preferred_username to the login)."""

    __test__ = False  # not a pytest class

    login: str
    password: str
    groups: list[str] = dataclasses.field(default_factory=list)
    claims: dict = dataclasses.field(default_factory=dict)

    def provider_entry(self) -> dict:
        claims = {
            "sub": f"sub-{secrets.token_hex(6)}",
            "preferred_username": self.login,
            "email": f"{self.login}@univ.example",
            "email_verified": True,
            "name": self.login.title(),
            "groups": self.groups,
            **self.claims,
        }
        return {"login": self.login, "password": self.password, "claims": claims}


def client(client_id: str, redirect_uris: list[str], post_logout_redirect_uris: list[str] = ()) -> dict:
    """A confidential client (client_secret_basic, code flow) with a fresh secret."""
    return {
        "client_id": client_id,
        "client_secret": secrets.token_urlsafe(24),
        "redirect_uris": list(redirect_uris),
        "post_logout_redirect_uris": list(post_logout_redirect_uris),
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "client_secret_basic",
    }


class OidcProvider:
    def __init__(self, users: list[TestUser], clients: list[dict], *, ttl: dict | None = None):
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.folder = Path(tempfile.mkdtemp(prefix="ailys-oidc-"))
        self.entries = [u.provider_entry() for u in users]
        self.clients = {c["client_id"]: c for c in clients}
        self.ttl = {"AuthorizationCode": 5, "AccessToken": 60, "IdToken": 60, **(ttl or {})}
        self.log_file = self.folder / "provider.log"
        self.process: subprocess.Popen | None = None

    @property
    def discovery_url(self) -> str:
        return f"{self.issuer}/.well-known/openid-configuration"

    def subject(self, login: str) -> str:
        return next(e["claims"]["sub"] for e in self.entries if e["login"] == login)

    def write_secret(self, client_id: str, path: Path) -> Path:
        """The client's secret in a file of mode 0600, as a site keeps it."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(self.clients[client_id]["client_secret"] + "\n")
        return path

    def start(self) -> OidcProvider:
        module = install()
        config = {
            "issuer": self.issuer,
            "port": self.port,
            "clients": list(self.clients.values()),
            "users": self.entries,
            "ttl": self.ttl,
            "cookie_keys": [secrets.token_hex(16)],
        }
        config_file = self.folder / "config.json"
        fd = os.open(config_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(config, f)
        argv = [shutil.which("node"), str(HERE / "provider.mjs"), str(config_file), str(module)]
        with open(self.log_file, "wb") as log:
            env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "NODE_ENV": "test"}
            self.process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, env=env)
        try:
            wait_until(self._answers, 30, f"the OpenID provider on {self.issuer}")
        except TimeoutError:
            self.stop()
            raise ProviderUnavailable(f"oidc-provider did not start:\n{log_tail(self.log_file)}") from None
        return self

    def _answers(self) -> bool:
        if self.process.poll() is not None:
            raise ProviderUnavailable(f"oidc-provider exited:\n{log_tail(self.log_file)}")
        try:
            return httpx.get(self.discovery_url, timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> OidcProvider:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- a browser's part of the flow, with an HTTP client -------------------------------------

    def sign_in(self, client: httpx.Client, authorize_url: str, login: str, password: str) -> httpx.Response:
        """From the provider's authorization URL: its login page, the password posted, and the
        redirects up to (not into) the client's redirect URI. Returns the last provider answer:
        a redirect to the client, or the login page with its error."""
        r = client.get(authorize_url)
        while r.is_redirect and _is_mine(r, self.issuer):
            r = client.get(urljoin(str(r.url), r.headers["location"]))
        action = re.search(r'<form method="post" action="([^"]+)"', r.text)
        if not action:
            raise AssertionError(f"no login form at {r.url} ({r.status_code}): {r.text[:500]}")
        r = client.post(urljoin(str(r.url), action.group(1)), data={"login": login, "password": password})
        while r.is_redirect and _is_mine(r, self.issuer):
            r = client.get(urljoin(str(r.url), r.headers["location"]))
        return r


def _is_mine(response: httpx.Response, issuer: str) -> bool:
    target = response.headers["location"]
    return target.startswith("/") or target.startswith(issuer)


def code_of(redirect: httpx.Response) -> dict[str, str]:
    """The query of a provider's redirect to a client: code and state (or error)."""
    return {k: v[0] for k, v in parse_qs(urlparse(redirect.headers["location"]).query).items()}


def hub_clients(hub_url: str, client_id: str, *others: str) -> list[dict]:
    """The hub's client (its callback, and its login page as where logout comes back to), and
    other applications of the same provider that can send people to the same callback."""
    callback = f"{hub_url}/hub/oauth_callback"
    return [client(client_id, [callback], [f"{hub_url}/hub/login"]), *(client(o, [callback]) for o in others)]


def site_authentication(provider: OidcProvider, client_id: str, secret_file: Path, **oidc) -> dict:
    """The ``authentication`` section of a test site that signs in through ``provider``, with
    local accounts on the same page."""
    return {
        "admin_users": ["hubadmin"],
        "kind": "oidc",
        "local_accounts": True,
        "oidc": {
            "discovery_url": provider.discovery_url,
            "client_id": client_id,
            "client_secret_file": str(provider.write_secret(client_id, secret_file)),
            "groups_claim": "groups",
            "scopes": ["openid", "profile", "email", "groups"],
            "button_label": "Université de test",
            **oidc,
        },
    }
