"""Slurm sessions inside the course image, for real: a Slurm cluster on this machine, our hub with
`spawner.slurm.container: charliecloud`, and learners' servers run by ch-run in the SquashFS image of
their course's environment (spawners/slurm/container.py), built by `ailys image build python-ml`
(tests/services/images.py: once per machine, or once per CI run).

Three learners: chc-ana's home is under the test cluster's folder in /tmp (ch-run's /tmp is the
host's), chc-ben's under /home (ch-run puts a tmpfs over the image's /home to bind it: the Mesolys
layout), chc-cy's course runs without a container on the same hub (the site's setting, changed for
course-bare's group), for the comparison of start times.
"""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from tests.conftest import OUTPUT
from tests.integration.test_local_hub import run_code
from tests.integration.test_slurm_spawner import (
    job_log,
    jobs_of,
    server,
    spawn_with_form,
    stop_server,
    wait_ready,
)
from tests.services import remove_unix_user, unix_user
from tests.services.hub import RunningHub, course, hub_xsrf, wait_until
from tests.services.slurm import SlurmCluster, cluster_for_tests

pytestmark = [pytest.mark.slurm, pytest.mark.hub]

CHECKOUT = Path(__file__).resolve().parents[2]
ENV = "python-ml"
COURSES = [
    course(
        "mlearn", ["chc-prof"], ["chc-ana", "chc-ben"], environment=ENV, resources={"cpus": 1, "memory": "1G"}
    ),
    course("bare", ["chc-prof"], ["chc-cy"], resources={"cpus": 1, "memory": "1G"}),
]
# Where each learner's home is made: under /tmp (the cluster's folder) or /home.
HOMES = {"chc-ana": "cluster", "chc-ben": "/home", "chc-cy": "cluster"}
# A run of the whole Slurm group measures 2 spawns of each kind; 5 for the figures.
RUNS = int(os.environ.get("AILYS_SLURM_CONTAINER_RUNS", "2"))

# chc-cy's group starts without a container: the same hub, cluster and course resources.
DROP_IN = """
c.SlurmSpawner.group_overrides = {
    "bare": {"groups": ["course-bare"], "spawner_override": {"container": "none"}},
}
"""

# What a cell prints from inside the learner's server: where its Python, packages, system and home
# come from, and what of the hub it can see.
CELL = """
import importlib.metadata, json, os, pathlib, sys
def readable(path):
    try:
        os.listdir(path)
        return "listed"
    except FileNotFoundError:
        return "absent"
    except PermissionError:
        return "refused"
root = [l.split() for l in open("/proc/self/mountinfo") if l.split()[4] == "/"][-1]
print(json.dumps({
    "prefix": sys.prefix,
    "executable": sys.executable,
    "sklearn": importlib.metadata.version("scikit-learn"),
    "os_release": open("/etc/os-release").read(),
    "root_fs": root[root.index("-") + 1],
    "home": os.environ["HOME"],
    "cwd": os.getcwd(),
    "note": (pathlib.Path(os.environ["HOME"]) / "from-host.txt").read_text(),
    "env": dict(os.environ),
    "hub_venv": [p for p in HUB_PREFIXES if os.path.exists(p)],
    "other_home": readable(OTHER_HOME),
}))
(pathlib.Path(os.environ["HOME"]) / "from-image.txt").write_text("written in the image")
"""


@pytest.fixture(scope="module")
def image():
    from tests.services.images import course_image

    return course_image(ENV)


@pytest.fixture(scope="module")
def cluster(request, image):
    extra = "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0"
    yield from cluster_for_tests(request, extra_config=extra)


@pytest.fixture(scope="module")
def learners(cluster):
    accounts = {}
    for name, where in HOMES.items():
        try:  # left by a run that died
            remove_unix_user(pwd.getpwnam(name))
        except KeyError:
            pass
        accounts[name] = unix_user(name, cluster.root / "home" if where == "cluster" else Path(where))
        cluster.add_user(name)
    yield accounts
    for account in accounts.values():
        remove_unix_user(account)


@pytest.fixture(scope="module")
def store():
    """The hub's image store: empty at first (a course whose image is not built), then holding the
    python-ml image built in the default store (test_a_course_whose_image_is_built_...)."""
    from images.store import ImageStore

    root = Path(tempfile.mkdtemp(prefix="chc-images-"))
    yield ImageStore(root)
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="module")
def hub(cluster, learners, store):
    site = {
        "spawner": {
            "kind": "slurm",
            "start_timeout": "2m",
            "poll_interval": "5s",
            "slurm": {
                "slurm_conf": str(cluster.slurm_conf),
                "default_partition": "cpu",
                "node_addresses": cluster.node_addresses,
                "container": "charliecloud",
                "image_store": str(store.root),
            },
        }
    }
    running = RunningHub(COURSES, site=site)
    (running.data / "jupyterhub_config.d" / "60-containers.py").write_text(DROP_IN)
    running.start()
    yield running
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "test_slurm_container-hub.log").write_text(running.log())
    for name in HOMES:
        try:
            stop_server(running, name)
        except Exception:
            pass
    running.stop()


def in_service(store, image) -> None:
    """The built image, in service in the hub's store (as `ailys image build` leaves it)."""
    store.record(image)
    store.make_current(image)


def start(hub: RunningHub, cluster: SlurmCluster, name: str, course: str):
    client = hub.login(name)
    began = time.monotonic()
    r = spawn_with_form(hub, client, name, course=course)
    assert r.status_code in (302, 303), f"the form answered {r.status_code}: {r.text[-2000:]}"
    wait_ready(hub, cluster, name)
    took = time.monotonic() - began
    (job,) = jobs_of(cluster, name)
    assert client.get(f"/user/{name}/lab", follow_redirects=True).status_code == 200
    return client, job, took


# The hub's environment, as the hub names it and as it is on disk (.venv may be a link).
HUB_PREFIXES = sorted({sys.prefix, os.path.realpath(sys.prefix)})


def server_process(job_id: str, cluster: SlurmCluster) -> psutil.Process:
    """The job's server: the image's jupyterhub-singleuser, or the hub's (ch-run's own command line
    names it too, and the launcher's source)."""
    for p in psutil.process_iter(["name", "cmdline"]):
        try:
            env = p.environ()
        except psutil.Error:
            continue
        argv = p.info["cmdline"] or []
        if (
            env.get("SLURM_JOB_ID") == job_id
            and env.get("SLURM_CONF") == str(cluster.slurm_conf)
            and p.info["name"] != "ch-run"
            and (
                argv[1:2] == ["/opt/ailys-env/bin/jupyterhub-singleuser"]  # the image's, a script
                or (argv[1:2] == ["-c"] and "jupyterhub.singleuser" in argv[2])  # the hub's SINGLEUSER_MAIN
            )
        ):
            return p
    raise AssertionError(f"no server process of job {job_id}")


def inside(hub, client, name: str, other: str) -> dict:
    home = Path(pwd.getpwnam(name).pw_dir)
    note = home / "from-host.txt"
    note.write_text(f"written on the host for {name}")
    os.chown(note, pwd.getpwnam(name).pw_uid, pwd.getpwnam(name).pw_gid)
    code = CELL.replace("HUB_PREFIXES", repr(HUB_PREFIXES)).replace(
        "OTHER_HOME", repr(pwd.getpwnam(other).pw_dir)
    )
    out = run_code(hub, client, name, code)
    return json.loads(out.strip().splitlines()[-1])


def pinned(package: str) -> str:
    lock = (CHECKOUT / "images" / ENV / "requirements.lock").read_text()
    return re.search(rf"^{re.escape(package)}==(\S+)", lock, re.MULTILINE)[1]


# --- tests ---------------------------------------------------------------------------------------


def test_a_course_whose_image_is_not_built_is_refused_before_submitting(hub, cluster, store):
    assert store.current(ENV) is None
    client = hub.login("chc-ana")
    r = client.post("/hub/api/users/chc-ana/server", json={"course": "mlearn"}, headers=hub_xsrf(client))
    assert r.status_code == 503, r.text
    assert r.json()["message"] == (
        "Not started: the environment python-ml of course mlearn has no HPC image yet. "
        "An administrator builds it with `ailys image build python-ml`."
    )
    assert server(hub, "chc-ana") is None and jobs_of(cluster, "chc-ana") == []


def test_a_session_runs_the_course_environment_of_the_image_not_the_hubs(
    hub, cluster, store, image, learners
):
    in_service(store, image)  # the next start finds it: no hub restart
    client, job, _ = start(hub, cluster, "chc-ana", "mlearn")
    seen = inside(hub, client, "chc-ana", other="chc-ben")
    assert seen["prefix"] == "/opt/ailys-env" and seen["executable"].startswith("/opt/ailys-env/")
    assert seen["sklearn"] == pinned("scikit-learn")  # the hub's environment has no scikit-learn
    image_os = cluster.run(
        "unsquashfs", "-cat", str(image.squashfs), "usr/lib/os-release"
    ).stdout  # /etc's: a link
    assert seen["os_release"] == image_os
    assert seen["root_fs"] == "fuse"  # the root file system is the SquashFS, mounted by ch-run
    assert seen["hub_venv"] == []  # nothing of the hub's environment is visible
    env = seen["env"]
    assert env["PATH"].split(":")[0] == "/opt/ailys-env/bin"
    assert env["JUPYTER_CONFIG_PATH"] == "/opt/ailys-env/share/ailys-hub/jupyter-config/learner"
    assert env["CH_RUNNING"] and env["USER"] == "chc-ana" and env["JUPYTERHUB_USER"] == "chc-ana"
    assert env["JUPYTERHUB_API_URL"].startswith("http") and "JUPYTERHUB_SERVICE_URL" in env
    leaked = {"AILYS_SITE", "CONFIGPROXY_AUTH_TOKEN", "JPY_API_TOKEN"} & set(env)
    assert not leaked, f"the hub's environment reached the server: {leaked}"
    named = [k for k, v in env.items() if any(p in v for p in HUB_PREFIXES)]
    assert not named, f"variables name the hub's environment: {named}"
    # the same home, at the same path, both ways
    assert seen["home"] == seen["cwd"] == learners["chc-ana"].pw_dir
    assert seen["note"] == "written on the host for chc-ana"
    assert (Path(learners["chc-ana"].pw_dir) / "from-image.txt").read_text() == "written in the image"
    assert seen["other_home"] == "absent"  # /home of the image: chc-ben's home is not there
    # seen from the host: the learner's process, the image's server, under ch-run
    process = server_process(job, cluster)
    assert process.uids().real == learners["chc-ana"].pw_uid
    assert process.cmdline()[0] == "/opt/ailys-env/bin/python3"  # the image's jupyterhub-singleuser
    assert process.parent().name() == "ch-run" and process.parent().parent().name() == "slurmstepd"


def test_a_home_under_home_is_bound_at_its_path_and_other_homes_stay_closed(
    hub, cluster, store, image, learners
):
    in_service(store, image)
    client, job, _ = start(hub, cluster, "chc-ben", "mlearn")
    seen = inside(hub, client, "chc-ben", other="chc-ana")
    assert seen["home"] == seen["cwd"] == "/home/chc-ben" == learners["chc-ben"].pw_dir
    assert seen["note"] == "written on the host for chc-ben"
    assert Path("/home/chc-ben/from-image.txt").read_text() == "written in the image"
    assert seen["other_home"] == "refused"  # chc-ana's home (under the shared /tmp): mode 700
    assert seen["prefix"] == "/opt/ailys-env"


def test_stop_ends_the_container_with_the_job(hub, cluster, store, image):
    in_service(store, image)
    if server(hub, "chc-ana") is None:
        start(hub, cluster, "chc-ana", "mlearn")
    (job,) = jobs_of(cluster, "chc-ana")
    stop_server(hub, "chc-ana")
    assert jobs_of(cluster, "chc-ana") == [] and cluster.job(job)["JobState"] == "CANCELLED"
    uid = pwd.getpwnam("chc-ana").pw_uid

    def nothing_left():
        return not [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == uid]

    wait_until(nothing_left, 30, "chc-ana's ch-run and server to end")


def test_start_to_ready_without_and_with_the_container(hub, cluster, store, image):
    """Alternating spawns on the same hub and cluster: chc-cy's course without a container,
    chc-ana's in the image. The figures go to test-output/test_slurm_container-timings.txt."""
    in_service(store, image)
    for name in ("chc-ana", "chc-cy"):
        stop_server(hub, name)
    timings: dict[str, list[float]] = {"none": [], "charliecloud": []}
    for _ in range(RUNS):
        for name, course_slug, kind in (("chc-cy", "bare", "none"), ("chc-ana", "mlearn", "charliecloud")):
            client, job, took = start(hub, cluster, name, course_slug)
            if kind == "none":  # the hub's own Python, straight under slurmstepd
                process = server_process(job, cluster)
                assert process.cmdline()[0].startswith(tuple(HUB_PREFIXES))
                assert process.parent().name() == "slurmstepd"
            timings[kind].append(took)
            stop_server(hub, name)
    medians = {kind: statistics.median(times) for kind, times in timings.items()}
    line = (
        f"bench: slurm-spawn-container none={medians['none']:.2f}s "
        f"charliecloud={medians['charliecloud']:.2f}s n={RUNS}"
    )
    OUTPUT.mkdir(exist_ok=True)
    (OUTPUT / "test_slurm_container-timings.txt").write_text(
        line + "\n" + "".join(f"{k}: {' '.join(f'{t:.2f}' for t in v)}\n" for k, v in timings.items())
    )
    print(line)
    assert medians["charliecloud"] < 30, job_log(cluster, "chc-ana")
