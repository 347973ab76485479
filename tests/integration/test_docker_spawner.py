"""Learners' servers in podman containers of the course image (spawner.kind docker), for real: the
python-ml image built by `ailys image build` (tests.services.images.course_image), podman's
Docker-compatible service (tests.services.podman), a real hub whose DockerSpawner talks to it.

Two learners of one course (1 CPU, 512M): each runs as their own uid in a container of their
own, sees only their home, within the course's limits; the exchange from inside; a hub killed
with SIGKILL and restarted finds the containers again; a container killed from outside and one
whose notebook goes over the memory limit are explained to their learner; the culler removes
an idle container.
"""

from __future__ import annotations

import json
import signal
import uuid

import httpx
import pytest
from websockets.sync.client import connect

from tests.integration.test_exchange import exchange_client, user_token, wait_for_exchange
from tests.integration.test_exchange_container import LEARNER_SCRIPT
from tests.integration.test_footprint_hub import records
from tests.integration.test_local_hub import run_code
from tests.services.hub import RunningHub, course, hub_xsrf, server_xsrf, wait_until
from tests.services.podman import podman_service_for_tests

pytestmark = [pytest.mark.podman, pytest.mark.hub, pytest.mark.slow]

SLUG, ANN, BOB, PROF = "dck-ml", "dck-ann", "dck-bob", "dck-prof"
MiB = 2**20
COURSES = [
    course(
        SLUG,
        [PROF],
        [ANN, BOB],
        resources={"cpus": 1, "memory": "512M"},
        environment="python-ml",
        assignments=[{"name": "ps1"}],
    )
]
MATERIAL = {SLUG: {"bienvenue.md": "# Bienvenue\n"}}
SPAWN_TIMEOUT = 120  # a container spawn is a few seconds here; the margin is for a loaded CI machine


@pytest.fixture(scope="module")
def image():
    from tests.services.images import course_image

    return course_image("python-ml")


@pytest.fixture(scope="module")
def podman(image):
    yield from podman_service_for_tests()


def docker_site(podman, **spawner) -> dict:
    # poll_interval 2 s: an ended container is noticed within a test's patience
    return {
        "spawner": {
            "kind": "docker",
            "poll_interval": "2s",
            "docker": {"socket": str(podman.socket)},
            **spawner,
        }
    }


@pytest.fixture(scope="module")
def hub(podman):
    podman.remove_containers([ANN, BOB])  # left by a run that died
    # the footprint service samples each second: a test's session lasts less than the default minute
    site = {**docker_site(podman), "energy": {"service": {"sample_every": "1s"}}}
    running = RunningHub(COURSES, materials=MATERIAL, site=site)
    running.start()
    try:
        wait_for_exchange(running)
        yield running
    finally:
        running.stop()
        podman.remove_containers([ANN, BOB])


@pytest.fixture(scope="module")
def clients(hub):
    return {name: hub.login(name) for name in (ANN, BOB)}


def container(podman, name: str) -> dict:
    [found] = podman.containers(name)
    return found


def inspect(podman, name: str) -> dict:
    done = podman.podman("inspect", container(podman, name)["Id"])
    return json.loads(done.stdout)[0]


def in_container(podman, name: str, script: str, *args: str) -> str:
    """Python in the learner's running container, as the container's user, from their home."""
    done = podman.podman(
        "exec", container(podman, name)["Id"], "/opt/ailys-env/bin/python3", "-c", script, *args
    )
    assert done.returncode == 0, f"in {name}'s container:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def server_gone(hub, name: str) -> bool:
    return not hub.admin_api().get(f"/users/{name}").json().get("servers")


def launch_form(client) -> str:
    r = client.get("/hub/spawn")
    assert r.status_code == 200, r.status_code
    return r.text


IDENTITY = r"""
import json, os, sys
procs = {}
for pid in filter(str.isdigit, os.listdir("/proc")):
    try:
        status = dict(l.split(":", 1) for l in open(f"/proc/{pid}/status") if ":" in l)
        procs[pid] = {k: status[k].split()[0] for k in ("Uid", "Gid", "CapEff", "NoNewPrivs")}
    except OSError:
        pass
def first(*paths):
    for p in paths:
        if os.path.exists(p):
            return p, open(p).read().strip()
print(json.dumps({
    "uid": os.getuid(), "home": os.environ["HOME"], "procs": procs,
    "other_home": os.path.exists(sys.argv[1]),
    "data": sorted(os.listdir(sys.argv[2])), "homes": sorted(os.listdir(os.path.join(sys.argv[2], "homes"))),
    "memory": first("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"),
    "cpu": first("/sys/fs/cgroup/cpu.max", "/sys/fs/cgroup/cpu/cpu.cfs_quota_us"),
    "material": open(os.path.join(os.environ["HOME"], sys.argv[-1], "bienvenue.md")).read(),
}))
"""


def test_two_learners_each_in_a_container_as_their_own_uid_within_the_course_limits(
    hub, podman, image, clients
):
    for name in (ANN, BOB):
        hub.spawn(clients[name], name, timeout=SPAWN_TIMEOUT)
    homes = {name: str(hub.data / "homes" / name) for name in (ANN, BOB)}
    for name, other in ((ANN, BOB), (BOB, ANN)):
        found = container(podman, name)
        assert found["Image"] == image.tag and found["State"] == "running"
        seen = json.loads(in_container(podman, name, IDENTITY, homes[other], str(hub.data), SLUG))
        uid = __import__("pwd").getpwnam(name).pw_uid
        assert uid >= 1000 and seen["uid"] == uid and seen["home"] == homes[name]
        # every process of the container (launcher, server, this one) is the learner's, unprivileged
        assert {(p["Uid"], p["CapEff"], p["NoNewPrivs"]) for p in seen["procs"].values()} == {
            (str(uid), "0000000000000000", "1")
        }
        # of the hub's data folder, only the learner's own home is in the container (at its own path)
        assert not seen["other_home"]
        assert (seen["data"], seen["homes"]) == (["homes"], [name])
        assert seen["memory"][1] == str(512 * MiB)
        quota = seen["cpu"][1]
        assert quota in ("100000 100000", "100000"), seen["cpu"]  # 1 CPU per 100 ms period
        assert seen["material"] == "# Bienvenue\n"  # the course's starter material, in the home
    config = inspect(podman, ANN)
    assert config["HostConfig"]["Memory"] == 512 * MiB and config["HostConfig"]["MemorySwap"] == 512 * MiB
    assert config["HostConfig"]["NanoCpus"] in (0, 10**9) and config["HostConfig"]["CpuQuota"] in (0, 100000)
    assert config["HostConfig"]["ReadonlyRootfs"] is True and config["HostConfig"]["NetworkMode"] == "host"
    # JupyterLab through the proxy, from the image's environment
    status = clients[ANN].get(f"/user/{ANN}/api/status")
    assert status.status_code == 200
    assert run_code(hub, clients[ANN], ANN, "import sys; print(sys.prefix)").strip() == "/opt/ailys-env"


def test_the_container_env_holds_the_servers_own_token_and_no_secret_of_the_hub(hub, podman, clients):
    env = dict(line.split("=", 1) for line in inspect(podman, ANN)["Config"]["Env"])
    tokens = {k for k in env if "TOKEN" in k or "SECRET" in k or "PASSWORD" in k}
    assert tokens == {"JUPYTERHUB_API_TOKEN"}, tokens
    # the server's token is ANN's own: the hub says whose it is
    owner = httpx.get(
        f"{hub.url}/hub/api/user", headers={"Authorization": f"token {env['JUPYTERHUB_API_TOKEN']}"}
    ).json()
    assert owner["name"] == ANN
    secrets = {
        hub.secrets.proxy_token,
        hub.secrets.sync_token,
        hub.secrets.cli_token,
        hub.observer_token,
        hub.secrets.cookie_secret_file.read_text().strip(),
        *hub.passwords.values(),
    }
    assert not [k for k, v in env.items() if any(s and s in v for s in secrets)]
    assert env["JUPYTER_CONFIG_PATH"] == "/opt/ailys-env/share/ailys-hub/jupyter-config/learner"
    assert env["AILYS_EXCHANGE_URL"].startswith("http://127.0.0.1:")


def test_a_learner_fetches_and_submits_from_inside_the_container(hub, podman, clients):
    import base64

    import nbformat

    prof = exchange_client(hub, user_token(hub, PROF))
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = None", id="c1")])
    files = {"ps1.ipynb": base64.b64encode(nbformat.writes(nb).encode()).decode()}
    assert prof.put(f"courses/{SLUG}/assignments/ps1", json={"files": files}).status_code == 201
    out = in_container(podman, ANN, LEARNER_SCRIPT.format(slug=SLUG), str(hub.data / "exchange"))
    result = json.loads(out.strip().splitlines()[-1])
    assert result["seen"] == {str(hub.data / "exchange"): False}
    assert result["list"] == 0 and "ps1" in result["list_out"], result["list_out"]
    assert (result["fetch"], result["submit"]) == (0, 0), result
    [sub] = prof.get(f"courses/{SLUG}/submissions").json()["submissions"]
    assert sub["student_id"] == ANN and sub["notebooks"] == ["ps1.ipynb"]
    fetched = hub.data / "homes" / ANN / SLUG / "ps1" / "ps1.ipynb"
    assert fetched.stat().st_uid == __import__("pwd").getpwnam(ANN).pw_uid


def test_a_hub_killed_and_restarted_finds_the_running_containers_again(hub, podman, clients):
    before = {name: container(podman, name)["Id"] for name in (ANN, BOB)}
    hub.stop_hub(signal.SIGKILL)
    hub.start_hub()
    for name in (ANN, BOB):
        wait_until(lambda n=name: hub.server_ready(n), 60, f"{name}'s server after the restart")
        assert container(podman, name)["Id"] == before[name]  # the same container, not a new one
    assert hub.open_server(clients[ANN], ANN).status_code == 200
    assert run_code(hub, clients[ANN], ANN, "print(6 * 7)").strip() == "42"
    assert "still running" in hub.log()


def test_a_container_killed_from_outside_is_explained_to_its_learner(hub, podman, clients):
    name = container(podman, BOB)["Names"][0]
    assert podman.podman("kill", name).returncode == 0
    wait_until(lambda: server_gone(hub, BOB), 30, "the hub to notice bob's killed container")
    form = launch_form(clients[BOB])
    assert "stopped from outside the hub (SIGKILL)" in form, form
    assert "ExitCode=137" in form
    assert podman.containers(BOB) == []  # explained, then removed
    # the next start tells it once more on the spawn page, then runs a new container
    start = clients[BOB].post(f"/hub/api/users/{BOB}/server", headers=hub_xsrf(clients[BOB]))
    assert start.status_code in (201, 202), start.text
    wait_until(lambda: hub.server_ready(BOB), SPAWN_TIMEOUT, "bob's new server")
    assert len(podman.containers(BOB)) == 1
    assert "stopped from outside the hub" not in launch_form_after_stop(hub, clients[BOB], BOB)


def launch_form_after_stop(hub, client, name: str) -> str:
    r = client.delete(f"/hub/api/users/{name}/server", headers=hub_xsrf(client))
    assert r.status_code in (202, 204), r.status_code
    wait_until(lambda: server_gone(hub, name), 60, f"{name}'s server to stop")
    return launch_form(client)


def test_a_cell_over_the_memory_limit_ends_the_session_and_the_learner_is_told_why(hub, podman, clients):
    client = clients[ANN]
    headers = server_xsrf(client, ANN)
    kernel = client.post(f"/user/{ANN}/api/kernels", json={"name": "python3"}, headers=headers).json()
    cookie = "; ".join(f"{c.name}={c.value}" for c in client.cookies.jar)
    url = hub.url.replace("http", "ws") + f"/user/{ANN}/api/kernels/{kernel['id']}/channels"
    code = "blocks = [bytearray(64 * 2**20) for _ in range(16)]  # 1G, over the course's 512M"
    request = {
        "header": {
            "msg_id": uuid.uuid4().hex,
            "msg_type": "execute_request",
            "username": ANN,
            "session": "s",
        },
        "parent_header": {},
        "metadata": {},
        "channel": "shell",
        "content": {"code": code, "silent": False, "store_history": False, "allow_stdin": False},
    }
    with connect(url, additional_headers={"Cookie": cookie}, open_timeout=30) as ws:
        ws.send(json.dumps(request))
    wait_until(lambda: server_gone(hub, ANN), 60, "the hub to notice ann's session over its memory")
    form = launch_form(client)
    assert "it ran out of memory" in form and "limit of 512M" in form, form
    assert podman.containers(ANN) == []
    assert "went over its memory limit" in hub.log() or "OOMKilled=true" in hub.log()


def test_a_busy_container_costs_more_than_an_idle_one_and_both_are_recorded(hub, podman, clients):
    """W2 5/9: container sessions are measured from their cgroup and recorded when they end."""
    for name in (ANN, BOB):
        if server_gone(hub, name):  # the memory test ended ann's session
            hub.spawn(clients[name], name, timeout=SPAWN_TIMEOUT)
    before = records(hub, SLUG)
    busy = "import time\nt = time.process_time()\nwhile time.process_time() - t < 4: pass\nprint('done')"
    assert run_code(hub, clients[ANN], ANN, busy).strip() == "done"
    run_code(hub, clients[BOB], BOB, "print(1 + 1)")
    for name in (ANN, BOB):
        r = clients[name].delete(f"/hub/api/users/{name}/server", headers=hub_xsrf(clients[name]))
        assert r.status_code in (202, 204)

    def recorded() -> dict | None:
        now = records(hub, SLUG)
        new = {
            w: r for w, r in now.items() if w in (ANN, BOB) and (w not in before or r.ref != before[w].ref)
        }
        return new if len(new) == 2 else None

    found = wait_until(recorded, 90, "both container sessions' footprint records")
    assert found[ANN].kind == found[BOB].kind == "docker" and found[ANN].method == "estimate"
    assert found[ANN].core_usage > found[BOB].core_usage
    assert found[ANN].energy_wh > found[BOB].energy_wh > 0
    print(f"container busy {found[ANN].energy_wh:.5f} Wh, idle {found[BOB].energy_wh:.5f} Wh")


@pytest.fixture
def culling_hub(podman):
    learner = "dck-cat"
    podman.remove_containers([learner])
    running = RunningHub(
        [course("dck-cull", [PROF], [learner], resources={"cpus": 1, "memory": "512M"})],
        site=docker_site(podman),
        culler={"timeout": "10s", "every": "5s"},
    )
    running.start()
    try:
        yield running, learner
    finally:
        running.stop()
        podman.remove_containers([learner])


def test_the_culler_stops_an_idle_container_and_it_is_removed(culling_hub, podman):
    hub, learner = culling_hub
    client = hub.login(learner)
    hub.spawn(client, learner, timeout=SPAWN_TIMEOUT)
    assert len(podman.containers(learner)) == 1
    wait_until(lambda: server_gone(hub, learner), 90, "the culler to stop the idle server", every=1)
    wait_until(lambda: podman.containers(learner) == [], 30, "the culled container to be removed")
    assert "Culling server" in hub.log() or "culler" in hub.log()
