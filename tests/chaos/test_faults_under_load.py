"""Faults in the middle of a class's arrival (W2 8/9): 30 learners log in over 40 s and, while they
do, the hub is killed -9 and started again, the proxy is killed and started again (by its service
manager: this test), and PostgreSQL, the hub's database, restarts.

The learners (tests/services/learners.py) behave as people do: a page that does not answer is
reloaded a second later. Each fault's figure is printed (`chaos: <fault> lost=… duplicated=…
recovered_s=…`) and asserted: no learner lost (each gets a server, none gives up), none with two
servers, every server that ran before a fault still running (same process) and reachable after it,
nobody logged out.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import signal
import threading
import time

import httpx
import pytest

from hub_config.launch import proxy_launch, start
from tests.conftest import need
from tests.services import postgres as pg
from tests.services.hub import RunningHub, course, wait_until
from tests.services.learners import Learner, arrive, server_processes

pytestmark = [pytest.mark.chaos, pytest.mark.hub, pytest.mark.postgres, pytest.mark.slow]

LEARNERS = [f"chx{i:02d}" for i in range(1, 31)]
WINDOW = 40  # seconds over which they arrive
# The faults, each once enough servers run: the hub while others still wait for theirs.
FAULTS = (("hub-kill", 6), ("proxy-kill", 14), ("postgres-restart", 22))
TOKEN_SCOPES = ["list:users", "read:servers", "access:servers"]


@dataclasses.dataclass
class Fault:
    name: str
    ready_before: dict[str, int]  # user -> pid of the server that answered before the fault
    recovered_s: float = float("nan")


@pytest.fixture(scope="module")
def database(tmp_path_factory):
    need(pg.missing() is None, pg.missing() or "")
    with pg.PostgresServer(log=tmp_path_factory.mktemp("pg") / "postgres.log") as server:
        yield server


@pytest.fixture(scope="module")
def hub(database):
    running = RunningHub(
        [course("chaos", ["chaos-prof"], LEARNERS)], site={"database_url": database.url}, start_timeout=300
    )
    running.token = secrets.token_hex(32)  # reads users and servers, opens servers: the test's own
    (running.data / "jupyterhub_config.d" / "60-chaos.py").write_text(
        f"c.JupyterHub.services.append({{'name': 'chaos', 'api_token': {running.token!r}}})\n"
        f"c.JupyterHub.load_roles.append({{'name': 'chaos', 'services': ['chaos'], 'scopes': {TOKEN_SCOPES!r}}})\n"
    )
    running.start()
    yield running
    running.stop()


def api(hub: RunningHub) -> httpx.Client:
    return httpx.Client(base_url=hub.url, headers={"Authorization": f"token {hub.token}"}, timeout=10)


def ready_servers(hub: RunningHub) -> dict[str, int]:
    """Users whose server the hub says is ready, with that server's process."""
    try:
        users = api(hub).get("/hub/api/users", params={"state": "ready"}).json()
    except (httpx.HTTPError, ValueError):
        return {}
    if not isinstance(users, list):
        return {}
    procs = server_processes(set(LEARNERS))
    return {u["name"]: procs[u["name"]][0].pid for u in users if len(procs.get(u["name"], [])) == 1}


def reachable(hub: RunningHub, user: str) -> bool:
    try:
        return api(hub).get(f"/user/{user}/api/status").status_code == 200
    except httpx.HTTPError:
        return False


def hub_answers(hub: RunningHub) -> bool:
    try:
        return api(hub).get("/hub/api/users", params={"limit": 1}).status_code == 200
    except httpx.HTTPError:
        return False


def inject(hub: RunningHub, database: pg.PostgresServer, faults: list[Fault], stop: threading.Event) -> None:
    """In a thread beside the learners: each fault once its number of servers run."""
    for name, after in FAULTS:
        while len(ready := ready_servers(hub)) < after:
            if stop.wait(0.5):
                return
        fault = Fault(name, ready)
        faults.append(fault)
        t0 = time.monotonic()
        if name == "hub-kill":
            hub.hub.send_signal(signal.SIGKILL)
            hub.hub.wait()
            hub.start_hub()  # as systemd's Restart= does; returns once its services answer
            wait_until(lambda: hub_answers(hub), 120, "the restarted hub")
        elif name == "proxy-kill":
            hub.proxy.send_signal(signal.SIGKILL)
            hub.proxy.wait()
            hub.proxy = start(proxy_launch(hub.catalogue, hub.secrets))
            wait_until(
                lambda: all(reachable(hub, u) for u in ready), 120, "every route back in the new proxy"
            )
        elif name == "postgres-restart":
            database.restart()
            wait_until(lambda: hub_answers(hub), 120, "the hub on the restarted database")
        fault.recovered_s = time.monotonic() - t0


@pytest.fixture(scope="module")
def burst(hub, database):
    faults: list[Fault] = []
    stop = threading.Event()
    injector = threading.Thread(target=inject, args=(hub, database, faults, stop), daemon=True)
    injector.start()
    learners = [Learner(hub.url, name, hub.passwords[name], course="chaos", retry=True) for name in LEARNERS]
    try:
        outcomes = asyncio.run(arrive(learners, WINDOW, idle=2, submit_every=0, timeout=420))
    finally:
        stop.set()
        injector.join(timeout=300)
    wait_until(lambda: hub_answers(hub), 60, "the hub after the burst")
    return {
        "outcomes": outcomes,
        "faults": {f.name: f for f in faults},
        "after": server_processes(set(LEARNERS)),
    }


@pytest.mark.parametrize("name", [name for name, _ in FAULTS])
def test_a_fault_under_load_loses_no_learner_and_no_server(hub, burst, name):
    fault = burst["faults"].get(name)
    assert fault, f"{name} never happened: fewer than its number of servers ever ran"
    after = burst["after"]
    lost = [u for u, pid in fault.ready_before.items() if [p.pid for p in after.get(u, [])] != [pid]]
    duplicated = sorted(u for u, procs in after.items() if len(procs) > 1)
    unreachable = [u for u in fault.ready_before if not reachable(hub, u)]
    print(
        f"chaos: {name} lost={len(lost)} duplicated={len(duplicated)} unreachable={len(unreachable)} "
        f"recovered_s={fault.recovered_s:.1f} servers_before={len(fault.ready_before)}"
    )
    assert not lost, f"servers that ran before {name} and not after (or replaced): {lost}"
    assert not duplicated, f"learners with two servers: {duplicated}"
    assert not unreachable, f"servers no longer reachable through the proxy after {name}: {unreachable}"


def test_every_learner_of_the_burst_got_a_server_and_stayed_logged_in(burst):
    outcomes = burst["outcomes"]
    failed = [f"{o.name} at {o.step}: {o.error}" for o in outcomes if o.step != "done"]
    relogged = [o.name for o in outcomes if o.relogins]
    ready = sorted(o.ready for o in outcomes if o.ready is not None)
    print(
        f"chaos: burst-{len(outcomes)} failures={len(failed)} relogins={len(relogged)} "
        f"retries={sum(o.retries for o in outcomes)} p50={ready[len(ready) // 2] if ready else float('nan'):.1f}s "
        f"max={ready[-1] if ready else float('nan'):.1f}s"
    )
    assert not failed, "learners who never got to run a cell:\n" + "\n".join(failed)
    assert not relogged, f"learners sent back to the login page by a fault: {relogged}"
