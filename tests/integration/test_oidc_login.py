"""Single sign-on against a real OpenID provider (panva's oidc-provider on loopback) and a real
hub, driven with an HTTP client as a browser would: the hub's login page, the provider's login
page, the password, the redirects back, the hub's home. Refusals are read as a person reads them.
"""

from __future__ import annotations

import contextlib
import html
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urljoin, urlparse, urlunparse

import bcrypt
import httpx
import psutil
import pytest
import sqlalchemy
from nativeauthenticator.orm import UserInfo
from sqlalchemy.orm import Session

from tests.conftest import need
from tests.services import free_port
from tests.services.hub import RunningHub, course
from tests.services.oidc import (
    OidcProvider,
    ProviderUnavailable,
    TestUser,
    code_of,
    hub_clients,
    site_authentication,
)

pytestmark = [pytest.mark.oidc, pytest.mark.hub]

HUB_CLIENT, OTHER_APP = "ailys-hub", "oi-other-app"
PASSWORDS = {
    "oi-ada": "ada-pw-1815",
    "oi-ben": "ben-pw-2718",
    "oi-cleo": "cleo-pw-3141",
    "oi-bad": "bad-pw-0000",
    "oi-twin-a": "twin-a-pw-11",
    "oi-twin-b": "twin-b-pw-22",
    "oi-eve": "eve-pw-6626",
    "oi-dan": "dan-pw-1618",
    "oi-fay": "fay-pw-1414",
}
USERS = [
    TestUser("oi-ada", PASSWORDS["oi-ada"]),
    TestUser("oi-ben", PASSWORDS["oi-ben"], groups=["oi-ml-students", "oi-chess-club"]),
    # a username claim that is not a Unix name: mapped
    TestUser("oi-cleo", PASSWORDS["oi-cleo"], claims={"preferred_username": "Oi.Cléo@Univ.example"}),
    # one that cannot be mapped: refused with a message
    TestUser("oi-bad", PASSWORDS["oi-bad"], claims={"preferred_username": "@@@"}),
    # two people of the provider whose claims give one name
    TestUser("oi-twin-a", PASSWORDS["oi-twin-a"], claims={"preferred_username": "oi-twin"}),
    TestUser("oi-twin-b", PASSWORDS["oi-twin-b"], claims={"preferred_username": "OI-Twin"}),
    TestUser("oi-eve", PASSWORDS["oi-eve"]),  # on no course
    TestUser("oi-dan", PASSWORDS["oi-dan"]),
    TestUser("oi-fay", PASSWORDS["oi-fay"], claims={"preferred_username": "oi-local"}),
]
LOCAL_PASSWORD = "local-trainee-pw-42"


@pytest.fixture(scope="module")
def sso():
    """The provider, then a hub of kind oidc with local accounts that uses it."""
    port = free_port()
    hub_url = f"http://127.0.0.1:{port}"
    provider = OidcProvider(USERS, hub_clients(hub_url, HUB_CLIENT, OTHER_APP))
    try:
        provider.start()
    except ProviderUnavailable as err:
        need(False, f"the OpenID provider cannot start: {err}")
    secrets = Path(tempfile.mkdtemp(prefix="ailys-test-oidc-secret-"))
    site = {
        "listen": {"port": port, "hub_port": free_port(), "proxy_api_port": free_port()},
        "authentication": site_authentication(provider, HUB_CLIENT, secrets / "client-secret"),
    }
    courses = [
        course("oi-ml", ["oi-prof"], ["oi-ada", "oi-cleo", "oi-twin", "oi-dan", "oi-local", "oi-trainee"]),
        course("oi-grp", ["oi-prof"], [], learners_from={"oidc_group": "oi-ml-students"}),
    ]
    hub = RunningHub(courses, site=site)
    try:
        hub.start()
        add_local_account(hub, "oi-trainee", LOCAL_PASSWORD)
        add_local_account(hub, "oi-local", LOCAL_PASSWORD)
        yield hub, provider
    finally:
        hub.stop()
        provider.stop()
        shutil.rmtree(secrets)


def add_local_account(hub: RunningHub, name: str, password: str) -> None:
    """A trainee's local account as an accepted invitation leaves it: a NativeAuthenticator row."""
    engine = sqlalchemy.create_engine(f"sqlite:///{hub.data}/jupyterhub.sqlite")
    with Session(engine) as db:
        db.add(
            UserInfo(
                username=name, password=bcrypt.hashpw(password.encode(), bcrypt.gensalt()), is_authorized=True
            )
        )
        db.commit()
    engine.dispose()


def start_sso(hub: RunningHub, browser: httpx.Client | None = None) -> tuple[httpx.Client, str]:
    """A browser at the hub's login page that clicks the single sign-on button: the client (with
    the hub's state cookie) and the provider's authorization URL the hub sent it to."""
    browser = browser or httpx.Client(base_url=hub.url, timeout=30)
    page = browser.get("/hub/login")
    if page.status_code == 302:  # signed in already: the login page sends them into the hub
        button_url = "/hub/oauth_login"
    else:
        button = re.search(r'id="sso-login"[^>]*href="([^"]+)"', page.text, re.S)
        assert button, f"no single sign-on button on the login page: {page.text[:1000]}"
        button_url = html.unescape(button.group(1))
    r = browser.get(button_url)
    assert r.status_code == 302, f"{button.group(1)} answered {r.status_code}: {r.text[:300]}"
    return browser, r.headers["location"]


def sso_login(hub: RunningHub, provider: OidcProvider, login: str) -> tuple[httpx.Client, httpx.Response]:
    """The whole round trip; the hub's answer at its callback (a redirect into the hub, where
    following it would start the person's server, or a refusal)."""
    browser, authorize = start_sso(hub)
    to_hub = provider.sign_in(browser, authorize, login, PASSWORDS[login])
    assert to_hub.is_redirect, (
        f"the provider did not send {login} back: {to_hub.status_code} {to_hub.text[:300]}"
    )
    return browser, browser.get(to_hub.headers["location"])


def error_of(page: httpx.Response) -> str:
    """What JupyterHub's error page tells the person (its <div class="error">), as text."""
    found = re.search(r'<div class="error">(.*?)</div>', page.text, re.S)
    text = re.sub(r"<[^>]+>", " ", found.group(1)) if found else page.text
    return html.unescape(" ".join(text.split()))


def whoami(browser: httpx.Client) -> str | None:
    r = browser.get("/hub/api/user")
    return r.json()["name"] if r.status_code == 200 else None


def test_a_person_signs_in_through_the_provider_and_lands_in_the_hub(sso):
    hub, provider = sso
    browser, home = sso_login(hub, provider, "oi-ada")
    assert home.status_code == 302 and home.headers["location"].startswith("/hub/")  # into the hub
    assert "login" not in home.headers["location"]
    assert whoami(browser) == "oi-ada"
    # the same browser again: the provider's session signs her in without her password
    again, authorize = start_sso(hub, browser)
    to_hub = browser.get(authorize)
    while to_hub.is_redirect and to_hub.headers["location"].startswith(("/", provider.issuer)):
        to_hub = browser.get(urljoin(str(to_hub.url), to_hub.headers["location"]))
    assert browser.get(to_hub.headers["location"]).status_code == 302
    assert whoami(browser) == "oi-ada"


def test_a_wrong_password_stays_on_the_providers_page(sso):
    hub, provider = sso
    browser, authorize = start_sso(hub)
    r = provider.sign_in(browser, authorize, "oi-ada", "not-her-password")
    assert r.status_code == 401 and "Invalid login or password." in r.text
    assert whoami(browser) is None


def test_the_login_page_offers_both_and_a_local_account_signs_in(sso):
    hub, _ = sso
    browser = httpx.Client(base_url=hub.url, timeout=30)
    page = browser.get("/hub/login")
    assert 'id="sso-login"' in page.text and "Université de test" in page.text
    assert 'id="local-login"' in page.text
    r = browser.post(
        "/hub/login",
        data={"username": "oi-trainee", "password": LOCAL_PASSWORD, "_xsrf": browser.cookies["_xsrf"]},
    )
    assert r.status_code == 302, r.text[:500]
    assert whoami(browser) == "oi-trainee"
    wrong = httpx.Client(base_url=hub.url, timeout=30)
    wrong.get("/hub/login")
    r = wrong.post(
        "/hub/login",
        data={"username": "oi-trainee", "password": "nope-nope-nope", "_xsrf": wrong.cookies["_xsrf"]},
    )
    assert r.status_code == 403 and 'id="local-login"' in r.text  # the page again, with its error
    assert whoami(wrong) is None


def test_a_forged_state_is_refused(sso):
    hub, provider = sso
    browser, authorize = start_sso(hub)
    to_hub = provider.sign_in(browser, authorize, "oi-dan", PASSWORDS["oi-dan"])
    query = code_of(to_hub)
    forged = urlencode(
        {"code": query["code"], "state": "eyJzdGF0ZV9pZCI6ICJmb3JnZWQifQ=="}
    )  # {"state_id": "forged"}
    r = browser.get(f"/hub/oauth_callback?{forged}")
    assert r.status_code == 400 and "OAuth state mismatch" in r.text
    assert whoami(browser) is None


def test_a_code_issued_to_another_application_is_refused(sso):
    """A sign-in made for another client of the provider (its audience is that client), whose
    code is delivered to our hub's callback with a state the hub did issue."""
    hub, provider = sso
    browser, authorize = start_sso(hub)
    parts = urlparse(authorize)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    other = urlunparse(parts._replace(query=urlencode({**query, "client_id": OTHER_APP})))
    to_hub = provider.sign_in(browser, other, "oi-dan", PASSWORDS["oi-dan"])
    r = browser.get(to_hub.headers["location"])
    assert r.status_code == 403
    assert "refused this sign-in: invalid_grant" in error_of(r) and "another application" in error_of(r)
    assert whoami(browser) is None


def test_an_expired_code_is_refused(sso):
    hub, provider = sso
    browser, authorize = start_sso(hub)
    to_hub = provider.sign_in(browser, authorize, "oi-dan", PASSWORDS["oi-dan"])
    # The provider's authorization codes live 5 s; its clock is the condition, nothing to poll.
    time.sleep(provider.ttl["AuthorizationCode"] + 1.5)
    r = browser.get(to_hub.headers["location"])
    assert r.status_code == 403, error_of(r)
    assert "refused this sign-in: invalid_grant (the sign-in code has expired" in error_of(r)
    assert whoami(browser) is None


def test_a_claim_that_is_not_a_unix_name_is_mapped(sso):
    hub, provider = sso
    browser, home = sso_login(hub, provider, "oi-cleo")
    assert home.status_code == 302, home.text[:500]
    assert whoami(browser) == "oi-cleo"  # from "Oi.Cléo@Univ.example"


def test_a_claim_that_cannot_be_mapped_is_refused_with_a_message(sso):
    hub, provider = sso
    browser, page = sso_login(hub, provider, "oi-bad")
    assert page.status_code == 403
    assert "Your login name from the provider cannot be used here" in page.text
    assert "&#39;@@@&#39; has no letter or digit" in page.text or "'@@@' has no letter or digit" in page.text
    assert whoami(browser) is None


def test_two_people_of_the_provider_never_share_a_name(sso):
    hub, provider = sso
    first, home = sso_login(hub, provider, "oi-twin-a")
    assert home.status_code == 302 and whoami(first) == "oi-twin"
    second, page = sso_login(hub, provider, "oi-twin-b")
    assert page.status_code == 403
    assert "already belongs to another person of the identity provider" in page.text
    assert whoami(second) is None
    again, home = sso_login(hub, provider, "oi-twin-a")  # the first keeps it
    assert whoami(again) == "oi-twin"


def test_a_provider_person_cannot_take_a_local_accounts_name(sso):
    hub, provider = sso
    browser, page = sso_login(hub, provider, "oi-fay")  # claims "oi-local", a local account
    assert page.status_code == 403 and "is a local account of this hub" in page.text
    assert whoami(browser) is None


def test_a_person_on_no_course_is_refused(sso):
    hub, provider = sso
    browser, page = sso_login(hub, provider, "oi-eve")
    assert page.status_code == 403 and "You are on no course of this hub" in page.text
    assert whoami(browser) is None


def test_the_groups_claim_flows_into_the_course_group(sso):
    hub, provider = sso
    browser, home = sso_login(hub, provider, "oi-ben")  # on no list: in oi-grp by the provider's group
    assert home.status_code == 302, home.text[:500]
    assert whoami(browser) == "oi-ben"
    command = [sys.executable, "-m", "hub_config.cli", "courses", "--site", str(hub.site_file), "sync"]
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=120)
    group = hub.admin_api().get("/groups/course-oi-grp").json()
    assert group["users"] == ["oi-ben"]


def test_logout_ends_the_hub_session_and_the_providers(sso):
    hub, provider = sso
    browser, home = sso_login(hub, provider, "oi-dan")
    assert whoami(browser) == "oi-dan"
    r = browser.get("/hub/logout")
    assert r.status_code == 302 and r.headers["location"].startswith(f"{provider.issuer}/session/end?")
    assert whoami(browser) is None  # the hub session is over already
    assert browser.get("/hub/home").status_code == 302
    # the provider asks; "Yes, sign me out" ends its session and comes back to the hub
    confirm = browser.get(r.headers["location"])
    form = re.search(r'<form[^>]*action="([^"]+)"[^>]*>(.*?)</form>', confirm.text, re.S)
    fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', form.group(2)))
    done = browser.post(urljoin(provider.issuer, form.group(1)), data={**fields, "logout": "yes"})
    assert done.is_redirect and done.headers["location"] == f"{hub.url}/hub/login"
    # the next sign-in asks for the password again: the provider's login page, not a redirect
    browser, authorize = start_sso(hub, browser)
    page = browser.get(authorize, follow_redirects=True)
    assert 'id="password"' in page.text


def test_the_client_secret_is_in_no_log_render_nor_environment(sso):
    hub, provider = sso
    secret = provider.clients[HUB_CLIENT]["client_secret"]
    sso_login(hub, provider, "oi-ada")  # a token exchange has used it
    logs = [p.read_text(errors="replace") for p in (hub.data / "logs").glob("*.log")]
    assert logs and not any(secret in text for text in logs)
    render = [sys.executable, "-m", "hub_config.cli", "render", "--site", str(hub.site_file)]
    out = subprocess.run(render, check=True, capture_output=True, text=True, timeout=60).stdout
    assert "client_secret_file" in out and secret not in out
    for process in psutil.Process(hub.hub.pid).children(recursive=True) + [psutil.Process(hub.hub.pid)]:
        with contextlib.suppress(psutil.Error):
            assert secret not in " ".join(f"{k}={v}" for k, v in process.environ().items())


def test_the_provider_down_mid_sign_in_gets_a_clear_page_and_the_hub_stays_up(sso):
    """Last of the module: it stops the provider."""
    hub, provider = sso
    browser, authorize = start_sso(hub)
    to_hub = provider.sign_in(browser, authorize, "oi-dan", PASSWORDS["oi-dan"])
    provider.stop()
    r = browser.get(to_hub.headers["location"])
    assert r.status_code == 503
    assert f"Identity provider unavailable ({provider.issuer}/token" in error_of(r)
    assert "Traceback" not in r.text
    assert whoami(browser) is None
    local = httpx.Client(base_url=hub.url, timeout=30)  # local accounts still sign in
    local.get("/hub/login")
    data = {"username": "oi-trainee", "password": LOCAL_PASSWORD, "_xsrf": local.cookies["_xsrf"]}
    assert local.post("/hub/login", data=data).status_code == 302
    assert whoami(local) == "oi-trainee"
