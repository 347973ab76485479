"""Single sign-on in a real browser: the hub's login page, the button of the institution, the
provider's own login page (panva's oidc-provider on loopback), JupyterLab, then logout through
JupyterLab's menu, which ends the hub session and the provider's.

Debian's Chromium driven by Playwright; screenshots and logs in test-output/<test name>/.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from tests.conftest import need
from tests.e2e.chromium import lab_page
from tests.services import free_port
from tests.services.hub import RunningHub, course
from tests.services.oidc import OidcProvider, ProviderUnavailable, TestUser, hub_clients, site_authentication

pytestmark = [pytest.mark.browser, pytest.mark.oidc, pytest.mark.hub]

LEARNER, PASSWORD = "oi-lab", "oi-lab-pw-2026"
CLIENT = "ailys-hub"
SPAWN_TIMEOUT = 90  # seconds; a few here, the margin is for a loaded CI machine
UI_TIMEOUT = 30


@pytest.fixture
def sso_hub():
    port = free_port()
    provider = OidcProvider([TestUser(LEARNER, PASSWORD)], hub_clients(f"http://127.0.0.1:{port}", CLIENT))
    try:
        provider.start()
    except ProviderUnavailable as err:
        need(False, f"the OpenID provider cannot start: {err}")
    secrets = Path(tempfile.mkdtemp(prefix="ailys-test-oidc-secret-"))
    site = {
        "listen": {"port": port, "hub_port": free_port(), "proxy_api_port": free_port()},
        "authentication": site_authentication(provider, CLIENT, secrets / "client-secret"),
    }
    hub = RunningHub([course("oi-lab-course", ["oi-lab-prof"], [LEARNER])], site=site)
    try:
        yield hub.start(), provider
    finally:
        hub.stop()
        provider.stop()
        shutil.rmtree(secrets)


def test_sign_in_through_the_provider_land_in_jupyterlab_and_log_out(browser, sso_hub, output_dir):
    from playwright.sync_api import expect

    hub, provider = sso_hub
    with lab_page(browser, hub, output_dir, UI_TIMEOUT) as page:
        page.goto(f"{hub.url}/hub/login")
        expect(page.locator("#local-login")).to_be_visible()  # local accounts on the same page
        page.locator("#sso-login").click()

        # The provider's own page: a wrong password first, then hers.
        page.wait_for_url(f"{provider.issuer}/interaction/**")
        page.locator("#login").fill(LEARNER)
        page.locator("#password").fill("not-the-password")
        page.locator("#sign-in").click()
        expect(page.locator("#login-error")).to_have_text("Invalid login or password.")
        page.locator("#login").fill(LEARNER)
        page.locator("#password").fill(PASSWORD)
        page.locator("#sign-in").click()

        # Back at the hub, which starts her server and opens JupyterLab.
        page.wait_for_url(f"**/user/{LEARNER}/lab**", timeout=SPAWN_TIMEOUT * 1000)
        expect(page.locator("#jp-main-statusbar")).to_be_visible(timeout=SPAWN_TIMEOUT * 1000)
        page.screenshot(path=output_dir / "lab.png")

        # JupyterLab's File > Log Out: the hub's logout, then the provider's.
        page.locator(".lm-MenuBar-itemLabel", has_text="File").click()
        # (the hub's entry: jupyter_server's own "Log Out" is also listed under a hub)
        page.locator('.lm-Menu-item[data-command="hub:logout"]').click()
        page.wait_for_url(f"{provider.issuer}/session/end**")
        page.get_by_role("button", name="Yes, sign me out").click()
        page.wait_for_url(f"{hub.url}/hub/login**")
        expect(page.locator("#sso-login")).to_be_visible()
        page.screenshot(path=output_dir / "logged-out.png")

        # Signed out of both: the hub asks again, and so does the provider.
        page.goto(f"{hub.url}/hub/home")
        page.wait_for_url(f"{hub.url}/hub/login**")
        page.locator("#sso-login").click()
        page.wait_for_url(f"{provider.issuer}/interaction/**")
        expect(page.locator("#password")).to_be_visible()
