"""A Mesolys learner logs in with their directory account in a real browser and lands in
JupyterLab: Debian's Chromium against a real hub whose authentication is a real slapd
(tests/services/ldap.py), the learner a member of the course's directory group only.
A screenshot of the lab goes to test-output/<test name>/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import need
from tests.e2e.chromium import lab_page, log_in
from tests.services import ldap as slapd
from tests.services.hub import RunningHub, course
from tests.services.ldap import LdapPerson, SlapdServer

pytestmark = [pytest.mark.browser, pytest.mark.hub, pytest.mark.ldap]

LEARNER, PASSWORD = "ld-gus", "Gus-directory-pw-8"  # a real Unix account under a root hub
SLUG = "ld-lab"
REPO = Path(__file__).resolve().parents[2]
SPAWN_TIMEOUT = 90
UI_TIMEOUT = 30


@pytest.fixture
def hub(output_dir):
    need(slapd.missing() is None, slapd.missing() or "")
    directory = SlapdServer(
        [LdapPerson(LEARNER, PASSWORD), LdapPerson("ld-gus-prof", "Prof-directory-pw-9")],
        {"m1-lab": [LEARNER]},
        log=output_dir / "slapd.log",
    )
    with directory:
        c = course(SLUG, ["ld-gus-prof"], [], learners_from={"ldap_group": directory.group_dn("m1-lab")})
        site = {
            "authentication": {"kind": "ldap", "ldap": directory.site_section(), "admin_users": []},
        }
        running = RunningHub([c], site=site)
        running.passwords[LEARNER] = PASSWORD
        try:
            running.start()
            sync = [
                sys.executable,
                "-m",
                "hub_config.cli",
                "courses",
                "--site",
                str(running.site_file),
                "sync",
            ]
            done = subprocess.run(sync, capture_output=True, text=True, cwd=REPO)  # the group's members, now
            assert done.returncode == 0, done.stderr
            yield running
        finally:
            running.stop()


def test_a_directory_learner_logs_in_and_lands_in_jupyterlab(browser, hub, output_dir):
    from playwright.sync_api import expect

    with lab_page(browser, hub, output_dir, UI_TIMEOUT) as page:
        log_in(page, hub, LEARNER)
        page.wait_for_url(f"**/user/{LEARNER}/lab**", timeout=SPAWN_TIMEOUT * 1000)
        expect(page.locator("#filebrowser")).to_be_visible(timeout=SPAWN_TIMEOUT * 1000)
        expect(page.locator(".jp-Launcher").first).to_be_visible(timeout=SPAWN_TIMEOUT * 1000)
        page.screenshot(path=output_dir / "lab.png")
