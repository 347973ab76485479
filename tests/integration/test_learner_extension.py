"""nbgrader's learner side, loaded at its first request (grading/learner_extension.py), in a real
Jupyter server with a learner's server extensions (hub_config/appliers/spawner.py)."""

import json
import secrets
import subprocess
import sys

import httpx
import nbgrader
import pytest

from hub_config.appliers.spawner import SINGLEUSER_MAIN, singleuser_args
from tests.services import free_port
from tests.services.hub import wait_until

LOADED = "nbgrader's learner extensions loaded at their first request"


@pytest.fixture
def server(tmp_path):
    """A jupyter server (jupyterhub-singleuser's own app less the hub) with the learner's extensions."""
    port, token = free_port(), secrets.token_hex(16)
    log = tmp_path / "server.log"
    main = SINGLEUSER_MAIN.replace("jupyterhub.singleuser", "jupyter_server.serverapp").replace(
        "'jupyterhub-singleuser'", "'jupyter-server'"
    )
    cmd = [sys.executable, "-c", main, *singleuser_args(), f"--port={port}", "--ip=127.0.0.1"]
    cmd += [f"--IdentityProvider.token={token}", "--ServerApp.open_browser=False", "--allow-root"]
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "JUPYTER_CONFIG_PATH": str(tmp_path / "none")}
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
    http = httpx.Client(
        base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"token {token}"}, timeout=30
    )

    def answers():
        assert proc.poll() is None, log.read_text()
        try:
            return http.get("/api/status").status_code == 200
        except httpx.TransportError:
            return False

    try:
        wait_until(answers, 60, "the learner's server to answer")
        yield http, log
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        http.close()


def test_a_learner_server_starts_without_nbgrader_and_loads_it_at_the_panels_first_request(server):
    http, log = server
    assert "grading.learner_extension | extension was successfully loaded" in log.read_text()
    assert "nbgrader" not in log.read_text().replace("grading.learner_extension", "")
    # What the Assignments panel asks first: nbgrader's own answer, at once.
    r = http.get("/nbgrader_version", params={"version": nbgrader.__version__})
    assert r.status_code == 200 and json.loads(r.text) == {"success": True}
    assert log.read_text().count(LOADED) == 1
    r = http.post("/assignments/validate", json={"path": "../outside.ipynb"})
    assert r.status_code == 403  # nbgrader's validate handler, with its own path check
    assert http.get("/courses").status_code == 200  # nbgrader's course list, answered as JSON
    assert log.read_text().count(LOADED) == 1  # loaded once
    # Its routes only: the rest of the server is untouched.
    assert http.get("/api/contents").status_code == 200
    assert http.get("/assignments/nope").status_code == 404


def test_nbgrader_answers_only_an_authenticated_request(server):
    http, _ = server
    url = http.base_url.join("/nbgrader_version")
    r = httpx.get(url, params={"version": nbgrader.__version__}, follow_redirects=False)
    assert r.status_code == 302 and r.headers["location"].startswith("/login")  # nbgrader's @authenticated
