"""`make bench-login`: logins on our hub against stock JupyterHub authenticators configured by hand.

Three figures, each the median of ``--runs`` logins of ours and of stock, alternating (the order
swaps every round), both hubs side by side for the whole figure:

- login-local: our local site (LocalLogin: NativeAuthenticator with the catalogue's rules) against
  stock NativeAuthenticator;
- login-ldap: our ldap kind (DirectoryLogin) against stock jupyterhub-ldapauthenticator, on the
  same slapd (tests/services/ldap.py): StartTLS with the certificate checked against the test CA,
  search with the read-only service account, then bind as the person;
- login-oidc: our oidc kind (SingleSignOnOrLocal, as site_authentication of tests/services/oidc.py
  sets it up) against stock GenericOAuthenticator, on the same oidc-provider, each hub with its own
  static client.

A login is timed from its first request to the hub's home page answering 200 with the person's
name, with a fresh HTTP client (no cookie, no provider session: the password is typed every time);
the client itself is made before the clock starts. Local and LDAP: GET /hub/login, POST of the
form, GET /hub/home. OIDC: GET /hub/oauth_login, the provider's redirects and login page, POST of
the password there (consent is implied for these first-party clients), the redirects back to the
hub's callback, GET /hub/home. The login's own redirect is not followed: it goes to /hub/spawn,
and no server is started here. A login that fails in any way is counted, not timed.

The same person logs in every round, after a warm-up login each (templates, connections, caches).
That first login writes the person's groups (and the sync the directory group's members) to the
roster files, and for LiveCatalogue's racy window after that (2 s) every catalogue call of ours
parses every course file again: the bench waits for that window to close, so that the figures are
a returning person's login (docs/authentication.md gives what a first login costs).

Ours is the real hub and proxy (tests.services.hub.RunningHub). Stock is JupyterHub with a short
hand-written config, SimpleLocalProcessSpawner, starting its own proxy. Both hubs have the same
people; ours also has a catalogue: the bench person's course and three other courses of ten
learners, and for ldap and oidc the person is a learner through a directory group or a provider
group only, so that every login goes through the roster.

Passwords are hashed with bcrypt's default cost (12) by both local hubs (ours when it seeds the
demo accounts, stock's rows as NativeAuthenticator.create_user writes them); the bench reads both
databases and prints the costs. Stock NativeAuthenticator 1.3's own login handler calls
``handler.statsd``, which JupyterHub 6 removed: the stock config puts back a no-op statsd, the
least that lets it run unchanged. The stock LDAP config gives ldap3 ``validate=CERT_REQUIRED``
(its default checks no certificate, ours always checks). Stock configs read secrets from the
fixtures' files at start, as ours does.

Each figure is printed as a table, then the line DESIGN.md asks for, with the failed logins:
`bench: login-<kind> ours=<median s> stock=<median s> ratio=<ours/stock> n=20 failures_ours=0 failures_stock=0`.
For information the bench also prints each hub's own time for the request that checks the password
(POST /hub/login, or GET /hub/oauth_callback), from the hubs' logs.

    .venv/bin/python -m tests.bench.login [--runs 20] [--kinds local ldap oidc] [--keep]

(`--runs 2` checks the bench itself in about a minute.) Every name of the bench starts with bl-;
no Unix account is made (no server starts).
"""

from __future__ import annotations

import argparse
import math
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import bcrypt
import httpx
import sqlalchemy
from nativeauthenticator.orm import UserInfo
from sqlalchemy.orm import Session

from hub_config import roster
from hub_config.catalogue import RACY_SECONDS
from tests.bench.stock import BIN, start_stock_hub, stop_stock_hub
from tests.services import free_port
from tests.services import ldap as slapd
from tests.services.hub import RunningHub, course, wait_until
from tests.services.ldap import LdapPerson, SlapdServer
from tests.services.oidc import OidcProvider, TestUser, client, hub_clients, site_authentication

REPO = Path(__file__).resolve().parents[2]
PERSON = {"local": "bl-ana", "ldap": "bl-ldap", "oidc": "bl-oidc"}
PASSWORD = {"ldap": "Bl-directory-pw-2718", "oidc": "Bl-provider-pw-3141", "local-stock": "Bl-stock-pw-1618"}
GROUP = {"ldap": "bl-m2-ia", "oidc": "bl-m2-ia-2026"}
OURS_CLIENT, STOCK_CLIENT = "bl-ours-hub", "bl-stock-hub"
# The request that checks the password, in each hub's log ("302 POST /hub/login?next= ... 254.31ms").
CHECK = {"local": r"POST /hub/login", "ldap": r"POST /hub/login", "oidc": r"GET /hub/oauth_callback"}


def say(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


class LoginFailed(Exception):
    """A login that did not end on the person's home page: counted, not timed."""


def other_courses() -> list[dict]:
    """Courses of other people: the catalogue, roster and roles every login of ours goes through."""
    return [
        course(f"bl-other-{i}", [f"bl-prof-{i}"], [f"bl-l{i}-{j:02d}" for j in range(10)]) for i in range(3)
    ]


# --- stock hubs -------------------------------------------------------------------------------

STOCK_HEADER = """\
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.JupyterHub.db_url = "sqlite:///{root}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{root}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = "{root}/jupyterhub.pid"
c.JupyterHub.spawner_class = "simple"  # no server is started: the bench stops at /hub/home
c.Authenticator.allowed_users = {{{user!r}}}
"""

STOCK_LOCAL = """\
c.JupyterHub.authenticator_class = "native"
# NativeAuthenticator 1.3's login handler times itself with handler.statsd, which JupyterHub 6
# removed: a no-op one, so that its own handler runs unchanged.
from jupyterhub.handlers.base import BaseHandler


class NoStatsd:
    def timer(self, *args, **kwargs):
        return self

    def start(self):
        return self

    def stop(self, send=True):
        pass


BaseHandler.statsd = NoStatsd()
"""

STOCK_LDAP = """\
import ssl
from pathlib import Path

c.JupyterHub.authenticator_class = "ldapauthenticator.LDAPAuthenticator"
c.LDAPAuthenticator.server_address = "127.0.0.1"
c.LDAPAuthenticator.server_port = {ldap_port}
c.LDAPAuthenticator.tls_strategy = "before_bind"
c.LDAPAuthenticator.tls_kwargs = {{"ca_certs_file": {ca_file!r}, "validate": ssl.CERT_REQUIRED}}
c.LDAPAuthenticator.lookup_dn = True
c.LDAPAuthenticator.lookup_dn_search_user = {service_dn!r}
c.LDAPAuthenticator.lookup_dn_search_password = Path({service_password_file!r}).read_text().strip()
c.LDAPAuthenticator.lookup_dn_user_dn_attribute = "uid"
c.LDAPAuthenticator.user_search_base = {user_base!r}
c.LDAPAuthenticator.user_attribute = "uid"
"""

STOCK_OIDC = """\
from pathlib import Path

c.JupyterHub.authenticator_class = "oauthenticator.generic.GenericOAuthenticator"
c.GenericOAuthenticator.client_id = {client_id!r}
c.GenericOAuthenticator.client_secret = Path({secret_file!r}).read_text().strip()
c.GenericOAuthenticator.oauth_callback_url = "http://127.0.0.1:{port}/hub/oauth_callback"
# The provider's endpoints, copied from its discovery document.
c.GenericOAuthenticator.authorize_url = {authorize_url!r}
c.GenericOAuthenticator.token_url = {token_url!r}
c.GenericOAuthenticator.userdata_url = {userdata_url!r}
c.GenericOAuthenticator.username_claim = "preferred_username"
c.GenericOAuthenticator.scope = ["openid", "profile", "email", "groups"]
c.GenericOAuthenticator.basic_auth = True
c.GenericOAuthenticator.enable_pkce = True
"""


class StockHub:
    """A stock JupyterHub from a hand-written config (STOCK_HEADER then the kind's part)."""

    def __init__(self, user: str, body: str, port: int | None = None, **values) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="stock-"))
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_file = self.root / "hub.log"
        self.config = self.root / "jupyterhub_config.py"
        fields = {
            "port": self.port,
            "hub_port": free_port(),
            "api_port": free_port(),
            "proxy": str(BIN / "configurable-http-proxy"),
            "root": self.root,
            "user": user,
            **values,
        }
        self.config.write_text(STOCK_HEADER.format(**fields) + body.format(**fields))
        self.proc: subprocess.Popen | None = None

    def start(self) -> StockHub:
        self.proc = start_stock_hub(self.config, self.root, self.log_file, self.url)
        return self

    def log(self) -> str:
        return self.log_file.read_text(errors="replace")

    def stop(self, keep: bool) -> None:
        stop_stock_hub(self.proc)
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)


def stop_ours(hub: RunningHub, keep: bool, workdir: Path, name: str) -> None:
    if keep and hub.hub is not None:  # stop() deletes the hub's folder
        (workdir / f"ours-{name}.log").write_text(hub.log())
    hub.stop()


# --- logins -----------------------------------------------------------------------------------


def expect(r: httpx.Response, status: int, what: str) -> httpx.Response:
    if r.status_code != status:
        raise LoginFailed(f"{what} answered {r.status_code}: {r.text[:300]!r}")
    return r


def at_home(http: httpx.Client, base: str, user: str) -> None:
    home = expect(http.get(f"{base}/hub/home"), 200, "/hub/home")
    if f"/user/{user}/" not in home.text and user not in home.text:
        raise LoginFailed(f"/hub/home is not {user}'s home page")


def form_login(base: str, user: str, password: str) -> Callable[[httpx.Client], None]:
    """The login form of /hub/login, as a browser posts it, then the home page."""

    def login(http: httpx.Client) -> None:
        expect(http.get(f"{base}/hub/login"), 200, "GET /hub/login")
        xsrf = http.cookies.get("_xsrf")
        if not xsrf:
            raise LoginFailed("the login page set no _xsrf cookie")
        data = {"username": user, "password": password, "_xsrf": xsrf}
        r = expect(http.post(f"{base}/hub/login", data=data), 302, "POST /hub/login")
        if "/login" in r.headers.get("location", ""):
            raise LoginFailed(f"POST /hub/login sent {user} back to {r.headers['location']}")
        at_home(http, base, user)

    return login


def sso_login(base: str, provider: OidcProvider, user: str, password: str) -> Callable[[httpx.Client], None]:
    """The whole round trip: the hub's oauth_login, the provider's pages, the hub's callback, home."""

    def login(http: httpx.Client) -> None:
        r = expect(http.get(f"{base}/hub/oauth_login"), 302, "GET /hub/oauth_login")
        to_hub = provider.sign_in(http, r.headers["location"], user, password)
        if not to_hub.is_redirect or not to_hub.headers["location"].startswith(base):
            raise LoginFailed(
                f"the provider did not send {user} back: {to_hub.status_code} {to_hub.text[:300]!r}"
            )
        r = expect(http.get(to_hub.headers["location"]), 302, "GET /hub/oauth_callback")
        if "/login" in r.headers.get("location", ""):
            raise LoginFailed(f"the callback sent {user} back to {r.headers['location']}")
        at_home(http, base, user)

    return login


def timed(login: Callable[[httpx.Client], None]) -> float:
    """Seconds from the first request to the home page, with a fresh client made before the clock."""
    with httpx.Client(timeout=30) as http:
        t0 = time.perf_counter()
        try:
            login(http)
        except httpx.HTTPError as err:
            raise LoginFailed(f"{type(err).__name__}: {err}") from err
        except AssertionError as err:  # the provider's page had no login form (OidcProvider.sign_in)
            raise LoginFailed(str(err)) from err
        return time.perf_counter() - t0


def settle(hub: RunningHub) -> None:
    """Wait until the roster files that the warm-up's login or the sync wrote are older than
    LiveCatalogue's racy window: until then every catalogue call parses every file again, which
    is what follows a change (a first login with groups), not a returning person's login."""

    def settled() -> bool:
        mtimes = [os.stat(f).st_mtime for f in roster.source_files(hub.data) if os.path.exists(f)]
        return not mtimes or time.time() - max(mtimes) > RACY_SECONDS

    wait_until(settled, 30, "the hub's roster files to settle", every=0.2)


def alternate(
    logins: dict[str, Callable], runs: int, warmed: Callable[[], None] = lambda: None
) -> tuple[dict[str, list[float]], dict[str, int]]:
    """``runs`` logins of each, alternating, the order swapped every round, after one warm-up
    each and then ``warmed()``."""
    times: dict[str, list[float]] = {name: [] for name in logins}
    failures = dict.fromkeys(logins, 0)
    names = list(logins)
    for i in range(-1, runs):  # round -1 warms up: templates, connections, caches
        if i == 0:
            warmed()
        for name in names if i % 2 else names[::-1]:
            run = "warm-up" if i < 0 else i + 1
            try:
                seconds = timed(logins[name])
            except LoginFailed as err:
                say(f"  {name} login {run}: FAILED, {err}")
                failures[name] += i >= 0
                continue
            if i >= 0:
                times[name].append(seconds)
            say(f"  {name} login {run}: {seconds:.3f} s")
    return times, failures


# --- the three figures --------------------------------------------------------------------------


def add_local_account(db_file: Path, name: str, password: str) -> None:
    """A NativeAuthenticator account as its create_user writes it (bcrypt, default cost)."""
    engine = sqlalchemy.create_engine(f"sqlite:///{db_file}")
    with Session(engine) as db:
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt())
        db.add(UserInfo(username=name, password=hashed, is_authorized=True))
        db.commit()
    engine.dispose()


def bcrypt_cost(db_file: Path, name: str) -> str:
    with sqlite3.connect(f"file:{db_file}?mode=ro", uri=True) as db:
        row = db.execute("SELECT password FROM users_info WHERE username = ?", (name,)).fetchone()
    return row[0].decode().split("$")[2] if row else "?"


def bench_local(runs: int, keep: bool, workdir: Path) -> dict:
    user = PERSON["local"]
    ours = RunningHub([course("bl-main", ["bl-prof"], [user]), *other_courses()])
    stock = StockHub(user, STOCK_LOCAL)
    try:
        ours.start()
        stock.start()
        add_local_account(stock.root / "jupyterhub.sqlite", user, PASSWORD["local-stock"])
        costs = {
            "ours": bcrypt_cost(ours.data / "jupyterhub.sqlite", user),
            "stock": bcrypt_cost(stock.root / "jupyterhub.sqlite", user),
        }
        logins = {
            "ours": form_login(ours.url, user, ours.passwords[user]),
            "stock": form_login(stock.url, user, PASSWORD["local-stock"]),
        }
        times, failures = alternate(logins, runs, lambda: settle(ours))
        return {"times": times, "failures": failures, "logs": (ours.log(), stock.log()), "bcrypt": costs}
    finally:
        stop_ours(ours, keep, workdir, "local")
        stock.stop(keep)


def bench_ldap(runs: int, keep: bool, workdir: Path) -> dict:
    reason = slapd.missing()
    if reason:
        raise RuntimeError(f"login-ldap needs Debian's slapd: {reason}")
    user = PERSON["ldap"]
    members = [user, *(f"bl-ldap-{j:02d}" for j in range(20))]
    people = [LdapPerson(uid, PASSWORD["ldap"] if uid == user else f"{uid}-pw-x") for uid in members]
    directory = SlapdServer(people, {GROUP["ldap"]: members}).start()
    ours = stock = None
    try:
        # A learner through the directory group only: the roster is part of every login.
        main = course(
            "bl-main", ["bl-prof"], [], learners_from={"ldap_group": directory.group_dn(GROUP["ldap"])}
        )
        site = {
            "authentication": {"kind": "ldap", "ldap": directory.site_section(), "admin_users": []},
            # as tests/integration/test_ldap_login.py: the gallery's account cannot read the rosters
            "gallery": {"enabled": False},
        }
        ours = RunningHub([main, *other_courses()], site=site)
        stock = StockHub(
            user,
            STOCK_LDAP,
            ldap_port=directory.port,
            ca_file=str(directory.ca_file),
            service_dn=directory.service_dn,
            service_password_file=str(directory.service_password_file),
            user_base=directory.people_base,
        )
        ours.start()
        sync = subprocess.run(
            [sys.executable, "-m", "hub_config.cli", "courses", "--site", str(ours.site_file), "sync"],
            capture_output=True,
            text=True,
            cwd=REPO,
        )
        if sync.returncode:
            raise RuntimeError(f"ailys courses sync failed: {sync.stderr}")
        stock.start()
        logins = {
            "ours": form_login(ours.url, user, PASSWORD["ldap"]),
            "stock": form_login(stock.url, user, PASSWORD["ldap"]),
        }
        times, failures = alternate(logins, runs, lambda: settle(ours))
        return {"times": times, "failures": failures, "logs": (ours.log(), stock.log())}
    finally:
        if ours is not None:
            stop_ours(ours, keep, workdir, "ldap")
        if stock is not None:
            stock.stop(keep)
        directory.stop(remove=not keep)


def bench_oidc(runs: int, keep: bool, workdir: Path) -> dict:
    user = PERSON["oidc"]
    ours_port, stock_port = free_port(), free_port()
    ours_url, stock_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{stock_port}"
    clients = [
        *hub_clients(ours_url, OURS_CLIENT),
        client(STOCK_CLIENT, [f"{stock_url}/hub/oauth_callback"], [f"{stock_url}/hub/login"]),
    ]
    provider = OidcProvider([TestUser(user, PASSWORD["oidc"], groups=[GROUP["oidc"]])], clients).start()
    secrets = Path(tempfile.mkdtemp(prefix="bl-oidc-secrets-"))
    ours = stock = None
    try:
        # A learner through the provider group only: the roster is part of every login.
        main = course("bl-main", ["bl-prof"], [], learners_from={"oidc_group": GROUP["oidc"]})
        site = {
            "listen": {"port": ours_port, "hub_port": free_port(), "proxy_api_port": free_port()},
            "authentication": site_authentication(provider, OURS_CLIENT, secrets / "ours-secret"),
        }
        ours = RunningHub([main, *other_courses()], site=site)
        discovery = httpx.get(provider.discovery_url, timeout=10).json()
        stock = StockHub(
            user,
            STOCK_OIDC,
            port=stock_port,
            client_id=STOCK_CLIENT,
            secret_file=str(provider.write_secret(STOCK_CLIENT, secrets / "stock-secret")),
            authorize_url=discovery["authorization_endpoint"],
            token_url=discovery["token_endpoint"],
            userdata_url=discovery["userinfo_endpoint"],
        )
        ours.start()
        stock.start()
        logins = {
            "ours": sso_login(ours.url, provider, user, PASSWORD["oidc"]),
            "stock": sso_login(stock.url, provider, user, PASSWORD["oidc"]),
        }
        times, failures = alternate(logins, runs, lambda: settle(ours))
        return {"times": times, "failures": failures, "logs": (ours.log(), stock.log())}
    finally:
        if ours is not None:
            stop_ours(ours, keep, workdir, "oidc")
        if stock is not None:
            stock.stop(keep)
        provider.stop()
        shutil.rmtree(secrets, ignore_errors=True)


# --- report -------------------------------------------------------------------------------------


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan  # every login failed


def request_ms(log: str, request: str) -> list[float]:
    """The durations JupyterHub logs for ``request`` ("302 POST /hub/login?next= -> ... 254.31ms")."""
    pattern = rf"\b\d{{3}} {request}\S* .*? ([0-9.]+)ms"
    return [float(ms) for ms in re.findall(pattern, log)]


def table(kind: str, result: dict, runs: int) -> None:
    times, failures = result["times"], result["failures"]
    print(f"\nlogin-{kind}: first request to the home page answering, {runs} alternating logins (s)")
    print(f"  {'':8}{'median':>10}{'min':>10}{'max':>10}{'n':>5}{'failed':>8}{'hub ms':>9}")
    for name, log in zip(("ours", "stock"), result["logs"], strict=True):
        values = times[name]
        cells = [f"{f(values):.3f}" for f in (median, min, max)] if values else ["-"] * 3
        hub_ms = request_ms(log, CHECK[kind])[1:]  # the warm-up's left out
        hub = f"{median(hub_ms):.0f}" if hub_ms else "-"
        print(
            f"  {name:8}"
            + "".join(f"{c:>10}" for c in cells)
            + f"{len(values):>5}{failures[name]:>8}{hub:>9}"
        )
    if "bcrypt" in result:
        print(
            f"  bcrypt cost of the person's hash: ours {result['bcrypt']['ours']}, stock {result['bcrypt']['stock']}"
        )


def line(kind: str, result: dict, runs: int) -> str:
    ours, stock = median(result["times"]["ours"]), median(result["times"]["stock"])
    ratio = ours / stock if stock else math.nan
    f = result["failures"]
    return (
        f"bench: login-{kind} ours={ours:.3f} stock={stock:.3f} ratio={ratio:.2f} n={runs} "
        f"failures_ours={f['ours']} failures_stock={f['stock']}"
    )


BENCHES = {"local": bench_local, "ldap": bench_ldap, "oidc": bench_oidc}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=20, help="logins of each hub per figure")
    parser.add_argument("--kinds", nargs="+", choices=list(BENCHES), default=list(BENCHES))
    parser.add_argument("--keep", action="store_true", help="keep the hubs' logs, as on a failure")
    args = parser.parse_args()
    # Every hub's folder in one of the bench's own, apart from other sessions' test folders.
    workdir = Path(tempfile.mkdtemp(prefix="ailys-bench-login-"))
    workdir.chmod(0o711)
    tempfile.tempdir = str(workdir)
    load_before = os.getloadavg()[0]
    say(f"machine: {os.cpu_count()} CPUs, 1-minute load average {load_before:.2f}")
    results: dict[str, dict] = {}
    failed = True
    try:
        for kind in args.kinds:
            say(f"login-{kind}: ours and stock alternating")
            results[kind] = BENCHES[kind](args.runs, args.keep, workdir)
        failed = False
    finally:
        for kind, result in results.items():
            table(kind, result, args.runs)
        print("  (hub ms: the hub's own time for the request that checks the password, from its log)")
        print()
        for kind, result in results.items():
            print(line(kind, result, args.runs))
        print(
            f"  machine: {os.cpu_count()} CPUs, 1-minute load average {load_before:.2f} at the start, "
            f"{os.getloadavg()[0]:.2f} at the end (other work on the machine skews every figure)"
        )
        if args.keep or failed:
            say(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
