"""The exchange from a container: nbgrader run by a learner in a podman container that holds only
the course environment and the learner's home reaches the exchange with the learner's token and
URL alone. The container sees no folder of the hub's (no exchange folder, no data folder), as in
a short course on one VM where every learner works in a container."""

from __future__ import annotations

import base64
import contextlib
import json
import pwd
import sys
import tempfile
from pathlib import Path

import httpx
import nbformat
import pytest

from hub_config.appliers.spawner import LEARNER_JUPYTER_CONFIG
from tests.integration.test_exchange import exchange_client, exchange_url, user_token, wait_for_exchange
from tests.services import remove_unix_user, unix_user
from tests.services.hub import RunningHub, course
from tests.services.podman import podman_for_tests

pytestmark = [pytest.mark.podman, pytest.mark.hub]

SLUG, LEARNER, PROF = "exa-box", "exa-kim", "exa-prof-c"
REPO = Path(__file__).resolve().parents[2]
VENV = Path(sys.prefix).resolve()  # the course environment: the project's virtual environment


@pytest.fixture(scope="module")
def podman():
    yield from podman_for_tests()


@pytest.fixture(scope="module")
def hub():
    running = RunningHub([course(SLUG, [PROF], [LEARNER], assignments=[{"name": "ps1"}])])
    running.start()
    try:
        wait_for_exchange(running)
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def learner():
    with contextlib.suppress(KeyError):  # left by a run that died
        remove_unix_user(pwd.getpwnam(LEARNER))
    parent = Path(tempfile.mkdtemp(prefix="ailys-homes-"))
    parent.chmod(0o711)
    account = unix_user(LEARNER, parent)
    yield account
    remove_unix_user(account)
    parent.rmdir()


def in_container(podman, hub, learner, token: str, script: str, *args: str):
    """Python ``script`` (with ``args``) as the learner in a new container, from their home;
    nbgrader is on PATH."""
    root, mounts = podman.rootfs(
        (learner.pw_name, learner.pw_uid, learner.pw_gid, learner.pw_dir),
        # the environment, and the code of ours it imports: the exchange classes and the units they
        # print sizes with (a course image carries our package: W2 4/9)
        [str(VENV), str(REPO / "grading"), str(REPO / "hub_config")],
    )
    env = {
        "HOME": learner.pw_dir,
        "USER": learner.pw_name,
        "PATH": f"{VENV}/bin:/usr/bin:/bin",
        # what the hub gives every learner's server (hub_config/appliers/spawner.py and exchange.py)
        "JUPYTERHUB_API_TOKEN": token,
        "AILYS_EXCHANGE_URL": exchange_url(hub),
        "JUPYTER_CONFIG_PATH": str(LEARNER_JUPYTER_CONFIG.resolve()),
    }
    options = [
        *mounts,
        "-v",
        f"{learner.pw_dir}:{learner.pw_dir}",
        "--workdir",
        learner.pw_dir,
        "--user",
        f"{learner.pw_uid}:{learner.pw_gid}",
    ]
    for name, value in env.items():
        options += ["--env", f"{name}={value}"]
    done = podman.run(f"ailys-{learner.pw_name}", root, options, [f"{VENV}/bin/python", "-c", script, *args])
    assert done.returncode == 0, f"in the container:\n{done.stdout}\n{done.stderr}"
    return done.stdout


LEARNER_SCRIPT = """
import json, os, subprocess, sys
import nbformat
seen = {{path: os.path.exists(path) for path in sys.argv[1:]}}
run = lambda *a: subprocess.run(["nbgrader", *a, "--course={slug}"], capture_output=True, text=True)
listed = run("list")
fetched = run("fetch_assignment", "ps1")
path = os.path.join("{slug}", "ps1", "ps1.ipynb")
nb = nbformat.read(path, as_version=4)
nb.cells[0].source = "x = 'answered in a container'"
nbformat.write(nb, path)
submitted = run("submit", "ps1")
print(json.dumps({{"seen": seen, "uid": os.getuid(),
                  **{{k: v.returncode for k, v in [("list", listed), ("fetch", fetched), ("submit", submitted)]}},
                  "list_out": listed.stdout + listed.stderr, "submit_out": submitted.stdout + submitted.stderr}}))
"""


def test_a_learner_in_a_container_fetches_and_submits_and_sees_no_hub_folder(podman, hub, learner):
    prof = exchange_client(hub, user_token(hub, PROF))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = None", id="c1")])
    files = {"ps1.ipynb": base64.b64encode(nbformat.writes(nb).encode()).decode()}
    assert prof.put(f"courses/{SLUG}/assignments/ps1", json={"files": files}).status_code == 201

    # folders of the hub's that exist on this host: none of them may exist in the container
    hub_folders = [str(p) for p in (hub.data / "exchange", hub.data, hub.root, REPO / "var") if p.exists()]
    assert str(hub.data / "exchange") in hub_folders
    script = LEARNER_SCRIPT.format(slug=SLUG)
    out = in_container(podman, hub, learner, user_token(hub, LEARNER), script, *hub_folders)
    result = json.loads(out.strip().splitlines()[-1])
    assert result["seen"] == dict.fromkeys(hub_folders, False)  # nothing of the hub's in the container
    assert result["uid"] == learner.pw_uid
    assert result["list"] == 0 and "ps1" in result["list_out"], result["list_out"]
    assert (result["fetch"], result["submit"]) == (0, 0), result

    fetched = Path(learner.pw_dir) / SLUG / "ps1" / "ps1.ipynb"
    assert fetched.stat().st_uid == learner.pw_uid  # written by the container, in the learner's home
    [sub] = prof.get(f"courses/{SLUG}/submissions").json()["submissions"]
    assert sub["student_id"] == LEARNER and sub["notebooks"] == ["ps1.ipynb"]
    got = prof.get(f"courses/{SLUG}/submissions/ps1/{LEARNER}/{sub['id']}").json()
    submitted = base64.b64decode(got["files"]["ps1.ipynb"]).decode()
    assert "answered in a container" in submitted
    # the learner's own listing shows the submission, with nbgrader's timestamp
    mine = (
        exchange_client(hub, user_token(hub, LEARNER))
        .get(f"courses/{SLUG}/submissions")
        .json()["submissions"]
    )
    assert [s["id"] for s in mine] == [sub["id"]] and mine[0]["timestamp"]


def test_a_container_without_a_token_reaches_nothing(podman, hub, learner):
    """The container's only key to the exchange is the token the hub gives: without it, a 401."""
    script = (
        "import httpx, os\n"
        "r = httpx.get(os.environ['AILYS_EXCHANGE_URL'] + 'api/courses')\n"
        "print(r.status_code, r.json()['error'])\n"
    )
    out = in_container(podman, hub, learner, "", script)
    assert out.strip() == "401 no JupyterHub API token in the Authorization header"
    assert httpx.get(exchange_url(hub) + "api/courses").status_code == 401  # the same seen from the host
