"""`make bench-load`: a class arriving at once. Learners that behave like learners, against our hub
(local site on SQLite, on PostgreSQL, Slurm site) and a stock JupyterHub in the same run.

N learners arrive spread evenly over `--window` seconds; each does what a person in a lecture does
(tests/services/learners.py: login form, server, JupyterLab, a kernel and a cell, idle, for one in
`--submit-every` a fetch and a submission through the Assignments panel, logout). The figure per
learner is the time from the login page to the cell's reply ("login to kernel ready").

An async client on httpx and websockets rather than locust: the steps above are one learner's
sequence with state carried from step to step (cookies of two origins' paths, the hub's XSRF, the
server's own XSRF, a server-sent progress stream, a kernel websocket), which is a coroutine here; in
locust it is gevent-patched code around a websocket library it does not provide, and its per-request
statistics do not give the per-learner end-to-end time this bench is about. Every run is bounded: a
learner gives up after `--learner-timeout` seconds (counted as a failure, with the step it was in),
the scenario after `--deadline`; all traffic is on loopback.

Printed per scenario: failures (and the step of each), p50/p95/max from login to kernel ready, the
hub's and the proxy's CPU seconds and peak RSS, the peak sum of learner servers' memory (servers
and kernels, PSS where readable, else RSS), then the `bench:` lines.

    .venv/bin/python -m tests.bench.load [--learners 100] [--window 60] [--scenarios local,postgres,slurm,stock]

(`--learners 3 --window 3 --slurm-learners 2 --stock-learners 3` checks the bench in a few minutes.)
Root only: ours makes a Unix account per learner (deleted at the end), the Slurm scenario a cluster.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import math
import os
import pwd
import secrets
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import psutil

from tests.bench.spawn import Ours, Stock, say
from tests.services import remove_unix_user, unix_user
from tests.services.learners import Learner, Outcome, arrive, memory_of

SAMPLE_EVERY = 1.0  # seconds between samples of the hub's, the proxy's and the servers' memory
ASSIGNMENT = "ps1"


class Scenario:
    """One hub under load: its URL, how a learner logs in, its processes."""

    name: str
    url: str
    submits: bool = False  # whether its learners can submit through an exchange

    def __init__(self, users: list[str]):
        self.users = users

    def password(self, user: str) -> str:
        raise NotImplementedError

    def processes(self) -> tuple[psutil.Process, psutil.Process | None]:
        """The hub's process and the proxy's."""
        raise NotImplementedError

    def start(self) -> None:
        raise NotImplementedError

    def stop(self, keep: bool) -> None:
        raise NotImplementedError

    def learners(self) -> list[Learner]:
        assignment = ASSIGNMENT if self.submits else None
        return [Learner(self.url, u, self.password(u), assignment=assignment) for u in self.users]


class OurHub(Scenario):
    submits = True

    def __init__(self, users: list[str], name: str, site: dict | None = None, resources: dict | None = None):
        super().__init__(users)
        self.name = name
        assignments = [{"name": ASSIGNMENT, "due": "2099-01-01T00:00:00+00:00"}]
        # a class's hub starts its services (gallery kernels, the course's formgrader) under load
        self.ours = Ours(
            users, name=name, site=site, resources=resources, assignments=assignments, start_timeout=300
        )
        self.url = self.ours.url

    def password(self, user: str) -> str:
        return self.ours.hub.passwords[user]

    def processes(self):
        return psutil.Process(self.ours.hub.hub.pid), psutil.Process(self.ours.hub.proxy.pid)

    def start(self) -> None:
        self.ours.start()
        from tests.integration.test_exchange import Instructor, wait_for_exchange

        wait_for_exchange(self.ours.hub)
        prof = Instructor(self.ours.hub, "benchprof", "bench", Path(tempfile.mkdtemp(prefix="prof-")))
        prof.nbgrader("generate_assignment", ASSIGNMENT, "--force")
        prof.nbgrader("release_assignment", ASSIGNMENT, "--force")

    def stop(self, keep: bool) -> None:
        self.ours.stop_all(keep)


class StockHub(Scenario):
    name = "stock"

    def __init__(self, users: list[str]):
        super().__init__(users)
        self.stock = Stock(users, start_timeout=300)
        self.url = self.stock.url
        self.secret = secrets.token_hex(8)
        with self.stock.config.open("a") as f:  # stock's DummyAuthenticator, with one shared password
            f.write(f"c.DummyAuthenticator.password = {self.secret!r}\n")

    def password(self, user: str) -> str:
        return self.secret

    def processes(self):
        hub = psutil.Process(self.stock.proc.pid)
        proxy = next((p for p in hub.children() if "configurable-http-proxy" in " ".join(p.cmdline())), None)
        return hub, proxy

    def start(self) -> None:
        self.stock.start()

    def stop(self, keep: bool) -> None:
        self.stock.stop_all(keep)


@dataclasses.dataclass
class Usage:
    hub_cpu: float = 0.0
    proxy_cpu: float = 0.0
    hub_rss: float = 0.0  # peak, MB
    proxy_rss: float = 0.0
    servers: float = 0.0  # peak sum of learner servers and kernels, MB


async def sample(scenario: Scenario, usage: Usage, stop: asyncio.Event) -> None:
    """Until ``stop``: peak RSS of the hub and the proxy, peak memory of every learner process (the
    processes whose environment names one of the scenario's users); CPU seconds are read at the end."""
    hub, proxy = scenario.processes()
    users = set(scenario.users)
    owner: dict[int, str | None] = {}
    cpu0 = {p.pid: sum(p.cpu_times()[:2]) for p in (hub, proxy) if p}
    while True:
        usage.hub_rss = max(usage.hub_rss, hub.memory_info().rss / 2**20)
        if proxy:
            usage.proxy_rss = max(usage.proxy_rss, proxy.memory_info().rss / 2**20)
        total = 0
        for p in psutil.process_iter():
            with contextlib.suppress(psutil.Error):
                if p.pid not in owner:
                    owner[p.pid] = p.environ().get("JUPYTERHUB_USER")
                if owner[p.pid] in users:
                    total += memory_of(p)
        usage.servers = max(usage.servers, total / 2**20)
        try:
            await asyncio.wait_for(stop.wait(), SAMPLE_EVERY)
            break
        except TimeoutError:
            continue
    usage.hub_cpu = sum(hub.cpu_times()[:2]) - cpu0[hub.pid]
    if proxy:
        usage.proxy_cpu = sum(proxy.cpu_times()[:2]) - cpu0[proxy.pid]


async def under_load(scenario: Scenario, args: argparse.Namespace) -> tuple[list[Outcome], Usage]:
    usage, stop = Usage(), asyncio.Event()
    sampler = asyncio.create_task(sample(scenario, usage, stop))
    try:
        async with asyncio.timeout(args.deadline):
            outcomes = await arrive(
                scenario.learners(), args.window, args.idle, args.submit_every, args.learner_timeout
            )
    except TimeoutError:
        outcomes = [
            Outcome(u, step="deadline", error=f"the scenario's {args.deadline} s ran out")
            for u in scenario.users
        ]
    finally:
        stop.set()
        await sampler
    return outcomes, usage


def quantile(values: list[float], q: float) -> float:
    if not values:
        return math.nan
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def report(name: str, outcomes: list[Outcome], usage: Usage) -> dict:
    ready = [o.ready for o in outcomes if o.ready is not None]
    failed = [o for o in outcomes if o.step != "done"]
    row = {
        "scenario": name,
        "n": len(outcomes),
        "failures": len(failed),
        "p50": quantile(ready, 0.50),
        "p95": quantile(ready, 0.95),
        "max": max(ready) if ready else math.nan,
        "submitted": sum(o.submitted for o in outcomes),
        **dataclasses.asdict(usage),
    }
    for o in failed[:10]:
        say(f"    {name}: {o.name} failed at {o.step}: {o.error}")
    return row


def table(rows: list[dict]) -> None:
    print("\nlogin to kernel ready, per scenario (s; CPU s; MB)")
    head = [
        "scenario",
        "n",
        "failures",
        "p50",
        "p95",
        "max",
        "submitted",
        "hub_cpu",
        "hub_rss",
        "proxy_cpu",
        "proxy_rss",
        "servers",
    ]
    print("  " + "".join(f"{h:>11}" for h in head))
    for r in rows:
        cells = [r["scenario"], r["n"], r["failures"], *(f"{r[k]:.1f}" for k in head[3:6]), r["submitted"]]
        cells += [f"{r[k]:.1f}" for k in head[7:]]
        print("  " + "".join(f"{c:>11}" for c in cells))
    n = {r["scenario"]: r["n"] for r in rows}
    for r in rows:
        print(f"  {r['scenario']}: servers {r['servers'] / max(1, n[r['scenario']]):.0f} MB per learner")


def lines(rows: dict[str, dict], args: argparse.Namespace) -> None:
    local, stock = rows.get("local"), rows.get("stock")
    if local:
        n = local["n"]
        if stock:
            ratio = local["p95"] / stock["p95"] if stock["p95"] else math.nan
            print(
                f"bench: load-{n} ours_p95={local['p95']:.1f} stock_p95={stock['p95']:.1f} ratio={ratio:.2f} "
                f"failures={local['failures']} stock_n={stock['n']} stock_failures={stock['failures']}"
            )
        else:
            print(f"bench: load-{n} ours_p95={local['p95']:.1f} failures={local['failures']}")
        print(f"bench: load-{n}-hub-rss ours={local['hub_rss']:.0f}MB")
    if "postgres" in rows:
        r = rows["postgres"]
        print(f"bench: load-{r['n']}-postgres ours_p95={r['p95']:.1f} failures={r['failures']}")
    if "slurm" in rows:
        r = rows["slurm"]
        print(f"bench: load-{r['n']}-slurm ours_p95={r['p95']:.1f} failures={r['failures']}")


def run(scenario: Scenario, args: argparse.Namespace, keep: bool) -> dict | None:
    """The scenario's row; None when its hub did not start (said, and the next scenario runs)."""
    say(f"{scenario.name}: {len(scenario.users)} learners over {args.window} s")
    failed = True
    try:
        try:
            scenario.start()
        except (RuntimeError, TimeoutError) as err:
            say(f"{scenario.name}: NOT RUN, its hub did not start: {err}")
            return None
        outcomes, usage = asyncio.run(under_load(scenario, args))
        failed = False
        return report(scenario.name, outcomes, usage)
    finally:
        scenario.stop(keep=keep or failed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--learners", type=int, default=100, help="learners of the local scenarios")
    parser.add_argument("--slurm-learners", type=int, default=40)
    parser.add_argument("--stock-learners", type=int, default=None, help="default: --learners")
    parser.add_argument("--window", type=float, default=60, help="seconds over which they arrive")
    parser.add_argument("--idle", type=float, default=20, help="seconds each stays idle once ready")
    parser.add_argument("--submit-every", type=int, default=3, help="one learner in N submits")
    parser.add_argument("--learner-timeout", type=float, default=300)
    parser.add_argument("--deadline", type=float, default=900, help="seconds a scenario may take")
    parser.add_argument("--scenarios", default="local,postgres,slurm,stock")
    parser.add_argument("--keep", action="store_true", help="keep the hubs' logs")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("bench-load makes a Unix account per learner: run it as root")
    workdir = Path(tempfile.mkdtemp(prefix="ailys-bench-load-"))
    workdir.chmod(0o711)  # learners traverse it to their homes
    tempfile.tempdir = str(workdir)
    wanted = args.scenarios.split(",")
    rows: dict[str, dict] = {}
    try:
        for name in wanted:
            if name == "local":
                users = [f"bld{i:03d}" for i in range(1, args.learners + 1)]
                rows[name] = run(OurHub(users, "local"), args, args.keep)
            elif name == "postgres":
                from tests.services import postgres as pg

                if pg.missing():
                    say(f"postgres: skipped, {pg.missing()}")
                    continue
                users = [f"blp{i:03d}" for i in range(1, args.learners + 1)]
                with pg.PostgresServer(log=workdir / "postgres.log") as server:
                    rows[name] = run(
                        OurHub(users, "postgres", site={"database_url": server.url}), args, args.keep
                    )
            elif name == "slurm":
                rows[name] = slurm_scenario(args, workdir)
            elif name == "stock":
                users = [f"bls{i:03d}" for i in range(1, (args.stock_learners or args.learners) + 1)]
                rows[name] = run(StockHub(users), args, args.keep)
            else:
                raise SystemExit(f"--scenarios: unknown scenario {name!r} (local, postgres, slurm, stock)")
        rows = {name: row for name, row in rows.items() if row}
        table(list(rows.values()))
        lines(rows, args)
        print(
            f"  machine: {os.cpu_count()} CPUs, {psutil.virtual_memory().total / 2**30:.0f} GB; "
            f"1-minute load average {os.getloadavg()[0]:.2f} at the end (other work skews every figure)"
        )
    finally:
        if args.keep:
            say(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def slurm_scenario(args: argparse.Namespace, workdir: Path) -> dict:
    from tests.bench.slurm import CLUSTER_CONFIG, RESOURCES, slurm_site
    from tests.services.slurm import SlurmCluster

    # 2 nodes that hold 40 sessions of 1 CPU and 512M each (declared: slurmd does not check them)
    per_node = math.ceil(args.slurm_learners / 2)
    cluster = SlurmCluster(
        workdir / "slurm",
        cpus=max(8, per_node),
        memory_mb=max(4096, per_node * 600),
        extra_config=CLUSTER_CONFIG,
    )
    users = [f"blm{i:03d}" for i in range(1, args.slurm_learners + 1)]
    accounts: list[pwd.struct_passwd] = []
    try:
        cluster.start()
        for name in users:
            accounts.append(unix_user(name, workdir))
            cluster.add_user(name)
        return run(OurHub(users, "slurm", site=slurm_site(cluster), resources=RESOURCES), args, args.keep)
    finally:
        for account in accounts:
            remove_unix_user(account)
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
