"""A trainee's first visit, in a real browser: the instructor imports the cohort and sends the
invitations (`ailys cohort`), the trainee opens the link of the e-mail the real SMTP server
received, chooses a password and lands in JupyterLab; later they log in with that password.

Debian's Chromium driven by Playwright, against a real hub and proxy on loopback.
"""

from __future__ import annotations

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.a11y import assert_accessible
from tests.e2e.chromium import lab_page
from tests.services.hub import RunningHub, course
from tests.services.smtp import SmtpServer

pytestmark = [pytest.mark.browser, pytest.mark.hub]

AILYS = str(Path(sys.executable).parent / "ailys")
SLUG = "cohort-lab"  # a course and trainee no other test uses
EMAIL = "yannick.cohortinvite@acme.example"
PASSWORD = "glycine-mimosa-73"
SPAWN_TIMEOUT = 90
UI_TIMEOUT = 30


@pytest.fixture
def mail():
    with SmtpServer() as server:
        yield server


@pytest.fixture
def hub(mail):
    today = dt.date.today()
    short = {
        "kind": "short-course",
        "start": today.isoformat(),
        "end": (today + dt.timedelta(days=2)).isoformat(),
    }
    running = RunningHub(
        [course(SLUG, ["prof-cohortlab"], [], **short)],
        site={
            "smtp": mail.site_settings(),
            "authentication": {"admin_users": ["hubadmin"], "demo_accounts": True},
        },
    )
    try:
        yield running.start()
    finally:
        running.stop()


def ailys(hub: RunningHub, *args: str) -> str:
    done = subprocess.run(
        [AILYS, "cohort", "--site", str(hub.site_file), *args], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_a_trainee_accepts_the_invitation_and_lands_in_jupyterlab(browser, hub, mail, output_dir):
    from playwright.sync_api import expect

    trainees = hub.root / "promo.csv"
    trainees.write_text(f"Courriel;Prénom;Nom;Société\n{EMAIL};Yannick;Cohortinvité;Acmé\n", encoding="utf-8")
    (name,) = re.findall(r"^added (\S+)", ailys(hub, "import", SLUG, str(trainees)), re.M)
    ailys(hub, "invite", SLUG)
    (link,) = set(re.findall(r"http://\S+/hub/invitation/[A-Za-z0-9_-]+", mail.wait_for(EMAIL).get_content()))

    with lab_page(browser, hub, output_dir, UI_TIMEOUT) as page:
        page.goto(link)
        expect(page.locator("h1")).to_have_text("Choose your password")  # the browser asks for English
        expect(page.locator("#invitation-username")).to_have_text(name)
        page.locator("#password_input").fill(PASSWORD)
        page.locator("#confirmation_input").fill(PASSWORD)
        page.screenshot(path=output_dir / "invitation.png")
        assert_accessible(page, "invitation-en")
        page.locator("#invitation_submit").click()
        # Logged in: the hub starts the server and sends the browser on to JupyterLab.
        page.wait_for_url(f"**/user/{name}/lab**", timeout=SPAWN_TIMEOUT * 1000)
        expect(page.locator("#filebrowser")).to_be_visible(timeout=SPAWN_TIMEOUT * 1000)
        page.screenshot(path=output_dir / "lab.png")

        # The link is spent; the password is what logs in now.
        page.goto(link)
        expect(page.locator("h1")).to_have_text("This invitation has already been used")
        assert_accessible(page, "invitation-used-en")
        page.goto(f"{hub.url}/hub/logout")
        page.goto(f"{hub.url}/hub/login")
        page.locator("#username_input").fill(name)
        page.locator("#password_input").fill(PASSWORD)
        page.locator("#login_submit").click()
        page.wait_for_url(f"**/user/{name}/lab**", timeout=SPAWN_TIMEOUT * 1000)
        expect(page.locator("#filebrowser")).to_be_visible(timeout=SPAWN_TIMEOUT * 1000)
