"""ansible/site.yml applied to a fresh Debian node (a podman container, tests/ansible/target.py):
from nothing to an HTTPS hub behind nginx, a learner's cell run through it in Chromium, a second
run that changes nothing, check mode that shows a change and makes none, and an upgrade to a new
version of the project while the learner's server runs, which survives it.

The tests run in order on one target (a module's deploy): each starts where the one before left.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import httpx
import pytest

from tests.ansible.deploy import HUB_USER, UNITS, Deploy, commit
from tests.ansible.target import skip_unless_possible
from tests.ansible.units import systemd_verify
from tests.conftest import need
from tests.e2e.chromium import CHROMIUM, CHROMIUM_FLAGS, dismiss_first_run_prompts

pytestmark = [pytest.mark.ansible, pytest.mark.podman, pytest.mark.browser, pytest.mark.slow]

LEARNER = "learner1"  # of courses/frugal-ml, the project's own course folder
NOTEBOOK = "01-premiers-pas.ipynb"
GREETING = "Bonjour, AILyS !"
SPAWN_TIMEOUT = 120  # seconds; a loaded 2-core machine
UI_TIMEOUT = 30


@pytest.fixture(scope="module")
def deploy(tmp_path_factory):
    skip_unless_possible()
    need(shutil.which("systemd-analyze") is not None, "systemd-analyze is missing (apt-get install systemd)")
    running = Deploy(tmp_path_factory.mktemp("d18-deploy")).start()
    try:
        yield running
    finally:
        for run in running.runs:
            print(f"playbook run: {run.seconds:.1f} s, exit {run.returncode}")
        running.stop()


@pytest.fixture(scope="module")
def lab(deploy):
    """One Chromium page for the module: the learner's session must outlive the upgrade."""
    need(
        shutil.which(CHROMIUM) is not None,
        f"Debian's Chromium is not at {CHROMIUM}: apt-get install chromium",
    )
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from playwright.sync_api import sync_playwright

    # Chromium trusts the system's roots only: it is told this one certificate's key (its SPKI
    # hash), where httpx checks the chain against the test's CA.
    cert = x509.load_pem_x509_certificate(deploy.pki["cert"].read_bytes())
    spki = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    digest = hashes.Hash(hashes.SHA256())
    digest.update(spki)
    import base64

    pin = base64.b64encode(digest.finalize()).decode()
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM, args=[*CHROMIUM_FLAGS, f"--ignore-certificate-errors-spki-list={pin}"]
        )
        context = browser.new_context(viewport={"width": 1280, "height": 800}, locale="en-US")
        page = context.new_page()
        page.set_default_timeout(UI_TIMEOUT * 1000)
        dismiss_first_run_prompts(page)
        try:
            yield page
        finally:
            context.close()
            browser.close()


def test_first_run_gives_a_hub_over_https_behind_nginx(deploy):
    run = deploy.apply()
    assert run.changed > 0
    answer = deploy.wait_for_hub()
    assert "version" in answer.json()
    assert answer.headers["strict-transport-security"].startswith("max-age=")
    # Plain HTTP is sent to HTTPS, on the port browsers use.
    plain = httpx.get(f"http://127.0.0.1:{deploy.target.http_port}/hub/login", timeout=10)
    assert plain.status_code == 301
    assert plain.headers["location"] == f"{deploy.url}/hub/login"
    # The hub and the proxy run as the hub account, not root.
    for unit in ("ailys-hub", "ailys-proxy"):
        pid = deploy.launcher.main_pid(unit)
        owner = deploy.target.run(["ps", "-o", "user=", "-p", str(pid)]).stdout.strip()
        assert owner == HUB_USER, (unit, owner)


def test_units_pass_systemd_analyze_verify(deploy, tmp_path):
    units = {
        f"{name}.service": deploy.target.path(f"/etc/systemd/system/{name}.service").read_text()
        for name in ("ailys-hub", "ailys-proxy")
    }
    done = systemd_verify(units, tmp_path)
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    hub = deploy.launcher.unit("ailys-hub")
    assert hub.kill_mode == "process" and hub.user == HUB_USER


def test_a_learner_runs_a_cell_through_nginx(deploy, lab):
    from playwright.sync_api import expect

    page = lab
    page.goto(f"{deploy.url}/hub/login")
    page.locator("#username_input").fill(LEARNER)
    page.locator("#password_input").fill(deploy.demo_password(LEARNER))
    page.locator("#login_submit").click()
    page.wait_for_url(f"**/user/{LEARNER}/lab**", timeout=SPAWN_TIMEOUT * 1000)
    listing = page.locator("#filebrowser .jp-DirListing-content")
    folder = listing.locator(".jp-DirListing-item").filter(has=page.get_by_text("frugal-ml", exact=True))
    expect(folder).to_be_visible(timeout=SPAWN_TIMEOUT * 1000)
    folder.dblclick()
    starter = listing.locator(".jp-DirListing-item").filter(has=page.get_by_text(NOTEBOOK, exact=True))
    expect(starter).to_be_visible()
    starter.dblclick()
    notebook = page.locator(".jp-NotebookPanel")
    # The kernel's websocket goes through nginx: "Idle" comes over it.
    expect(page.locator("#jp-main-statusbar")).to_contain_text("Python 3 (ipykernel) | Idle", timeout=60_000)
    cell = notebook.locator(".jp-CodeCell").filter(has_text=f'print("{GREETING}")')
    cell.locator(".jp-InputPrompt").click()
    page.keyboard.press("Shift+Enter")
    expect(cell.locator(".jp-OutputArea-output")).to_contain_text(GREETING, timeout=60_000)


def test_a_second_run_changes_nothing(deploy):
    run = deploy.apply()
    assert run.changed == 0, re.findall(r"^changed: .*$", run.output, re.M)


def test_check_mode_shows_a_change_and_makes_none(deploy):
    conf = deploy.target.path("/etc/nginx/sites-available/ailys-hub.conf")
    before = conf.read_text()
    deploy.write_vars(nginx_client_max_body_size="1g")
    try:
        run = deploy.apply("--check", "--diff")
    finally:
        deploy.write_vars()
    assert "-    client_max_body_size 512m;" in run.output
    assert "+    client_max_body_size 1g;" in run.output
    assert run.changed >= 1
    assert conf.read_text() == before


def _server_pid(deploy) -> int:
    """The learner's server: started by the hub's SINGLEUSER_MAIN (hub_config/appliers/spawner.py),
    not the course's formgrader, a jupyterhub-singleuser of the same account on this site."""
    done = deploy.target.run(["pgrep", "-u", HUB_USER, "-f", "from jupyterhub.singleuser import main"])
    pids = [int(p) for p in done.stdout.split()]
    listing = deploy.target.run(["ps", "-u", HUB_USER, "-o", "pid=,ppid=,args="]).stdout
    assert len(pids) == 1, f"the learner's server processes: {pids} of\n{listing}"
    return pids[0]


def _learner_api(deploy, lab, path: str) -> httpx.Response:
    """GET of the learner's server API with the browser's session cookies and its XSRF token (as
    JupyterLab sends them), over HTTPS checked against the test's CA (Playwright's own requests
    do not take Chromium's certificate pin)."""
    server = f"{deploy.url}/user/{LEARNER}/"
    cookies = {c["name"]: c["value"] for c in lab.context.cookies(server)}
    return httpx.get(
        f"{server}api/{path}",
        cookies=cookies,
        headers={"X-XSRFToken": cookies.get("_xsrf", "")},
        verify=str(deploy.pki["ca"]),
        timeout=30,
    )


def test_an_upgrade_restarts_the_hub_and_the_learner_server_survives(deploy, lab):
    server = _server_pid(deploy)
    hub = deploy.launcher.main_pid("ailys-hub")
    listed = _learner_api(deploy, lab, "kernels")
    assert listed.status_code == 200, listed.text
    kernels_before = listed.json()
    assert kernels_before, "the learner's notebook kernel should be running"

    (deploy.src / "UPGRADE-TEST").write_text("version 2\n")
    version = commit(deploy.src, "deploy test: version 2")
    run = deploy.apply()
    assert "RUNNING HANDLER [hub : Restart hub]" in run.output
    assert deploy.target.path(f"/opt/ailys-hub/venv/.ailys-installed-{version}").exists()
    assert deploy.launcher.main_pid("ailys-hub") != hub
    deploy.wait_for_hub()

    assert _server_pid(deploy) == server
    status = _learner_api(deploy, lab, "status")
    assert status.status_code == 200, status.text
    kernels = _learner_api(deploy, lab, "kernels").json()
    assert [k["id"] for k in kernels] == [k["id"] for k in kernels_before]
    assert all(deploy.launcher.running(name) for name in UNITS)


PROBE = "d18-probe"  # a learner the doctor tries the sudo rule as
CA_IN_TARGET = "/etc/ailys-test/ca.pem"


def _doctor(deploy) -> subprocess.CompletedProcess:
    return deploy.target.run(
        ["/opt/ailys-hub/venv/bin/ailys", "doctor", "--site", "/etc/ailys-hub/d18-target.yaml"]
        + ["--url", "https://127.0.0.1/", "--cacert", CA_IN_TARGET, "--probe-user", PROBE]
    )


def test_doctor_is_all_green_then_names_a_broken_sudo_rule_and_an_expired_certificate(deploy, tmp_path):
    from tests.ansible.deploy import make_pki

    deploy.target.path(CA_IN_TARGET).write_bytes(deploy.pki["ca"].read_bytes())
    deploy.target.run(["groupadd", "--system", "d18-learners"])
    deploy.target.run(["useradd", "--system", "--gid", "d18-learners", PROBE])
    done = _doctor(deploy)
    assert done.returncode == 0, done.stdout + done.stderr
    for check in ("nginx", "certificate", "slurm", "database", "disk", "services"):
        assert re.search(rf"^ok\s+{check}\s", done.stdout, re.M), done.stdout

    rule = deploy.target.path("/etc/sudoers.d/ailys-hub")
    good_rule = rule.read_text()
    rule.write_text(good_rule.replace("(%d18-learners)", "(%d18-nobody)"))
    try:
        broken = _doctor(deploy)
    finally:
        rule.write_text(good_rule)
    assert broken.returncode == 1
    assert re.search(rf"^FAIL slurm .*may not run Slurm commands as {PROBE}.*sudo", broken.stdout, re.M), (
        broken.stdout
    )

    expired = make_pki(tmp_path / "expired", ["127.0.0.1"], days=-1)
    cert = deploy.target.path("/etc/ssl/certs/ailys-hub.pem")
    key = deploy.target.path("/etc/ssl/private/ailys-hub.key")
    good = cert.read_bytes(), key.read_bytes()
    cert.write_bytes(expired["cert"].read_bytes())
    key.write_bytes(expired["key"].read_bytes())
    deploy.launcher.reload("nginx")
    try:
        old = _doctor(deploy)
    finally:
        cert.write_bytes(good[0])
        key.write_bytes(good[1])
        deploy.launcher.reload("nginx")
    assert old.returncode == 1
    assert re.search(r"^FAIL certificate .*expired on", old.stdout, re.M), old.stdout
