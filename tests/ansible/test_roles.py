"""The roles' templates rendered by Ansible itself (on localhost, no target): the units of each
site kind pass `systemd-analyze verify`, and the sudoers rule is the one
tests/integration/test_slurm_sudo.py installs on a real cluster and docs/design-notes.md shows."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.ansible.target import REPO
from tests.ansible.units import systemd_verify
from tests.conftest import need

pytestmark = pytest.mark.ansible

ROLES = REPO / "ansible" / "roles"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"
RENDERED = {
    "hub/templates/ailys-hub.service.j2": "etc/systemd/system/ailys-hub.service",
    "proxy/templates/ailys-proxy.service.j2": "etc/systemd/system/ailys-proxy.service",
    "services/templates/ailys-podman.service.j2": "etc/systemd/system/ailys-podman.service",
    "slurm_client/templates/sudoers.j2": "etc/sudoers.d/ailys-hub",
    "nginx/templates/ailys-hub.conf.j2": "etc/nginx/sites-available/ailys-hub.conf",
}
KINDS = {
    "slurm": {},
    "local": {"hub_site": {"spawner": {"kind": "local"}}, "hub_unit_user": "root"},
    "docker": {"hub_site": {"spawner": {"kind": "docker"}}, "hub_unit_user": "root"},
}


def render(base: Path) -> dict[str, Path]:
    """The templates above for each kind, with the roles' defaults and the kind's variables, each
    under base/<kind> as a root file system (one ansible-playbook run: it starts slowly)."""
    defaults = sorted(str(p) for p in ROLES.glob("*/defaults/main.yml"))
    plays, roots = [], {}
    for kind, extra in KINDS.items():
        roots[kind] = base / kind
        # lookup('template') renders on the controller as the template module would: one task
        # for all the files, their text read back from the JSON callback's output.
        rendering = {dest: f"{{{{ lookup('template', '{ROLES / src}') }}}}" for src, dest in RENDERED.items()}
        tasks = [{"name": kind, "ansible.builtin.debug": {"msg": rendering}}]
        # After the defaults in vars_files (play vars would lose to them), as an inventory's would win.
        (base / f"{kind}.json").write_text(json.dumps(extra))
        plays.append(
            {"name": kind, "hosts": "localhost", "connection": "local", "gather_facts": False}
            | {"vars_files": [*defaults, str(base / f"{kind}.json")], "tasks": tasks}
        )
    playbook = base / "render.yml"
    playbook.write_text(json.dumps(plays))
    done = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", str(playbook)],
        capture_output=True,
        text=True,
        timeout=300,
        env={
            "PATH": "/usr/bin:/bin",
            "ANSIBLE_STDOUT_CALLBACK": "json",
            "ANSIBLE_CONFIG": str(REPO / "ansible" / "ansible.cfg"),
            "HOME": str(base),
        },
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    for play in json.loads(done.stdout)["plays"]:
        kind = play["play"]["name"]
        for dest, text in play["tasks"][0]["hosts"]["localhost"]["msg"].items():
            (roots[kind] / dest).parent.mkdir(parents=True, exist_ok=True)
            (roots[kind] / dest).write_text(text)
    return roots


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    need(ANSIBLE_PLAYBOOK.exists(), "ansible is not installed in the environment (make test-deps)")
    return render(tmp_path_factory.mktemp("d18-render"))


@pytest.mark.parametrize("kind", KINDS)
def test_units_of_each_site_kind_pass_systemd_analyze_verify(rendered, kind):
    need(shutil.which("systemd-analyze") is not None, "systemd-analyze is missing (apt-get install systemd)")
    root = rendered[kind]
    names = ("ailys-hub", "ailys-proxy", "ailys-podman")
    units = {f"{n}.service": (root / f"etc/systemd/system/{n}.service").read_text() for n in names}
    done = systemd_verify(units, root)
    # verify exits 0 on a misspelt key or value, which it only warns about: no warning either.
    assert done.returncode == 0 and not done.stderr.strip(), done.stderr
    hub = (root / "etc/systemd/system/ailys-hub.service").read_text()
    assert "KillMode=process" in hub and "Restart=on-failure" in hub
    # sudo needs new privileges: only the Slurm site's hub may gain them.
    assert ("NoNewPrivileges=no" in hub) == (kind == "slurm")
    assert ("User=jupyterhub" in hub) == (kind == "slurm")


def test_the_sudoers_rule_is_the_one_the_slurm_sudo_test_installs(rendered):
    from tests.integration.test_slurm_sudo import SLURM_COMMANDS, sudoers_rule

    rule = (rendered["slurm"] / "etc/sudoers.d/ailys-hub").read_text()
    expected = sudoers_rule(
        "/etc/sudoers.d/ailys-hub",
        "jupyterhub",
        "mesolys-learners",
        "AILYS_HUB_SLURM",
        [f"/usr/bin/{name}" for name in SLURM_COMMANDS],
    )
    assert rule == expected
    if shutil.which("visudo"):
        checked = subprocess.run(["visudo", "-cf", "-"], input=rule, capture_output=True, text=True)
        assert checked.returncode == 0, checked.stderr


def test_nginx_redirects_http_and_upgrades_websockets(rendered):
    conf = (rendered["slurm"] / "etc/nginx/sites-available/ailys-hub.conf").read_text()
    assert "return 301 https://$host:443$request_uri;" in conf
    assert "proxy_set_header Upgrade $http_upgrade;" in conf
    assert 'add_header Strict-Transport-Security "max-age=31536000" always;' in conf
