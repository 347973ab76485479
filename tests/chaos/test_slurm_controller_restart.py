"""slurmctld restarted while a class's Slurm sessions run and others wait in the queue (W2 8/9):
none is lost, and the queued ones start once places free up.

A test cluster of 2 nodes with 3 CPUs each holds 6 one-CPU sessions; 8 learners arrive over 10 s,
so 2 wait in the queue (PENDING). slurmctld is stopped and started again from its saved state;
then two learners leave (their servers stopped), and the two queued sessions start. Printed:
`chaos: slurmctld-restart lost=… queued_started=… recovered_s=…`.
"""

from __future__ import annotations

import asyncio
import secrets
import threading
import time

import httpx
import pytest

from tests.services import remove_unix_user, unix_user
from tests.services.hub import RunningHub, course, wait_until
from tests.services.learners import Learner, arrive
from tests.services.slurm import SlurmCluster, cluster_for_tests

pytestmark = [pytest.mark.chaos, pytest.mark.slurm, pytest.mark.hub, pytest.mark.slow]

LEARNERS = [f"chs{i:02d}" for i in range(1, 9)]
PLACES = 6  # 2 nodes x 3 CPUs, one CPU per session
RESOURCES = {"partition": "cpu", "cpus": 1, "memory": "256M", "walltime": "1h"}
SCOPES = ["list:users", "read:servers", "access:servers", "delete:servers"]


@pytest.fixture(scope="module")
def cluster(request):
    extra = "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=1"
    yield from cluster_for_tests(request, cpus=3, memory_mb=2048, extra_config=extra)


@pytest.fixture(scope="module")
def hub(cluster: SlurmCluster):
    accounts = [unix_user(name, cluster.root / "home") for name in LEARNERS]
    for name in LEARNERS:
        cluster.add_user(name)
    site = {
        "spawner": {
            "kind": "slurm",
            "start_timeout": "10m",  # queued sessions wait for a place, as in a full lecture
            "poll_interval": "2s",
            "slurm": {
                "slurm_conf": str(cluster.slurm_conf),
                "default_partition": "cpu",
                "node_addresses": cluster.node_addresses,
                "command_timeout": "5s",
            },
        }
    }
    running = RunningHub(
        [course("chslurm", ["chs-prof"], LEARNERS, resources=RESOURCES)], site=site, start_timeout=300
    )
    running.token = secrets.token_hex(32)
    (running.data / "jupyterhub_config.d" / "60-chaos.py").write_text(
        f"c.JupyterHub.services.append({{'name': 'chaos', 'api_token': {running.token!r}}})\n"
        f"c.JupyterHub.load_roles.append({{'name': 'chaos', 'services': ['chaos'], 'scopes': {SCOPES!r}}})\n"
    )
    try:
        running.start()
        yield running
    finally:
        running.stop()
        for account in accounts:
            remove_unix_user(account)


def api(hub: RunningHub) -> httpx.Client:
    return httpx.Client(base_url=hub.url, headers={"Authorization": f"token {hub.token}"}, timeout=30)


def jobs(cluster: SlurmCluster) -> dict[str, tuple[str, str]]:
    """Each learner's job: (job id, state)."""
    out = cluster.run("squeue", "--noheader", "--format=%u %i %T", check=False).stdout
    return {u: (j, s) for u, j, s in (line.split() for line in out.splitlines() if line.strip())}


def test_a_controller_restart_loses_no_session_and_the_queued_start(hub, cluster):
    done = threading.Event()
    figures: dict = {}

    def fault() -> None:
        def full() -> bool:
            states = [s for _, s in jobs(cluster).values()]
            return states.count("RUNNING") == PLACES and states.count("PENDING") == len(LEARNERS) - PLACES

        wait_until(full, 600, f"{PLACES} sessions running and the others queued", every=1)
        wait_until(
            lambda: len(api(hub).get("/hub/api/users", params={"state": "ready"}).json()) == PLACES,
            300,
            "the running sessions ready",
            every=1,
        )
        before = jobs(cluster)
        t0 = time.monotonic()
        cluster.stop_controller()
        cluster.start_controller(timeout=120)
        figures["recovered_s"] = time.monotonic() - t0
        figures["before"] = before
        figures["after_restart"] = jobs(cluster)
        running = sorted(u for u, (_, s) in before.items() if s == "RUNNING")
        figures["reachable"] = [
            u for u in running if api(hub).get(f"/user/{u}/api/status").status_code == 200
        ]
        by_name = {learner.name: learner for learner in learners}

        def finished(name: str) -> bool:
            return by_name[name].outcome is not None and by_name[name].outcome.step in (
                "idle",
                "logout",
                "done",
            )

        wait_until(lambda: finished(running[0]) and finished(running[1]), 300, "two learners done", every=1)
        for leaving in running[:2]:  # two learners leave: their places go to the queue
            api(hub).delete(f"/hub/api/users/{leaving}/server")
        figures["left"] = running[:2]
        done.set()

    learners = [Learner(hub.url, n, hub.passwords[n], course="chslurm", retry=True) for n in LEARNERS]
    injector = threading.Thread(target=fault, daemon=True)
    injector.start()
    outcomes = asyncio.run(arrive(learners, 10, idle=1, submit_every=0, timeout=900))
    injector.join(timeout=60)
    assert done.is_set(), "the fault never happened (the cluster never held 6 running and 2 queued)"

    before, after = figures["before"], figures["after_restart"]
    lost = [u for u, job in before.items() if after.get(u, (None,))[0] != job[0]]
    queued = [u for u, (_, s) in before.items() if s == "PENDING"]
    started = [o.name for o in outcomes if o.name in queued and o.step == "done"]
    print(
        f"chaos: slurmctld-restart lost={len(lost)} queued={len(queued)} queued_started={len(started)} "
        f"reachable={len(figures['reachable'])}/{PLACES} recovered_s={figures['recovered_s']:.1f}"
    )
    assert not lost, f"jobs gone or replaced across the controller's restart: {lost}"
    assert len(figures["reachable"]) == PLACES, f"running servers unreachable after it: {figures}"
    assert sorted(started) == sorted(queued), [f"{o.name}: {o.step} {o.error}" for o in outcomes]
    failed = [f"{o.name} at {o.step}: {o.error}" for o in outcomes if o.step != "done"]
    assert not failed, failed
