"""`make bench-spawn`: learner servers of our local site against a stock JupyterHub.

Ours is the real hub and proxy, started as `ailys up` starts them (tests.services.hub.RunningHub).
Stock is JupyterHub with SimpleLocalProcessSpawner and a minimal config, starting its own proxy.
Both run jupyterhub-singleuser, JupyterHub and configurable-http-proxy from this same environment,
side by side for the whole bench, and every measure alternates between them.

A spawn is timed from the start request (POST /hub/api/users/<name>/server) to the ready event
of the hub's progress stream, which the hub sends once the server answers and its route is in
the proxy; the bench then checks that the server answers through the proxy. A spawn that fails
(the hub gives up, the server does not answer) is counted, not timed, and the bench goes on. Each
figure is printed as a table, then as the line DESIGN.md asks for, with the failed spawns:
`bench: <name> ours=<median> stock=<median> ratio=<ours/stock> n=<runs> failures_ours=0 failures_stock=0`.

    .venv/bin/python -m tests.bench.spawn [--runs 10] [--burst 20] [--burst-runs 3] [--keep]

(`--runs 1 --burst 2 --burst-runs 1` checks the bench itself in about a minute.)

Users are bench01..benchNN. As root, ours creates their Unix accounts; they are deleted at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import math
import os
import pwd
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

from tests.bench.stock import BIN, start_stock_hub, stop_stock_hub
from tests.services import free_port
from tests.services.hub import RunningHub, course

# The same rights for both hubs' bench token: start, stop, read and open any server.
SCOPES = ["admin:users", "servers", "access:servers", "list:users"]
IDLE_SECONDS = 5  # a server just up still settles (lazy imports, GC) before it is idle
STOP_TIMEOUT = 60


def say(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


def cpu_seconds(procs: list[psutil.Process]) -> float:
    return sum(sum(p.cpu_times()[:2]) for p in procs)


class SpawnFailed(Exception):
    """A spawn that did not end with its server answering through the proxy: counted, not timed."""


class Target:
    """One hub under test, driven through its REST API with an admin-scoped token."""

    name: str
    url: str
    log_file: Path

    def __init__(self, users: list[str]) -> None:
        self.users = users
        self.token = secrets.token_hex(32)

    def start(self) -> None:
        raise NotImplementedError

    def stop_all(self, keep: bool) -> None:
        raise NotImplementedError

    def hub_pid(self) -> int:
        raise NotImplementedError

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.url,
            headers={"Authorization": f"token {self.token}"},
            timeout=httpx.Timeout(300, connect=30),
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
        )

    async def spawn(self, http: httpx.AsyncClient, user: str) -> float:
        """Seconds from the start request to the hub's ready event; checks the server answers.
        Raises SpawnFailed for a spawn that fails in any way (a timeout of the hub or of a request)."""
        try:
            return await self._spawn(http, user)
        except httpx.HTTPError as err:
            raise SpawnFailed(f"{self.name}: {user}'s spawn: {type(err).__name__} {err}") from err

    async def _spawn(self, http: httpx.AsyncClient, user: str) -> float:
        t0 = time.perf_counter()
        r = await http.post(f"/hub/api/users/{user}/server")
        if r.status_code not in (201, 202):
            raise SpawnFailed(f"{self.name}: starting {user} answered {r.status_code} {r.text}")
        async with http.stream("GET", f"/hub/api/users/{user}/server/progress") as stream:
            async for line in stream.aiter_lines():
                if not line.startswith("data:"):
                    continue
                event = json.loads(line[5:])
                if event.get("failed"):
                    raise SpawnFailed(f"{self.name}: {user}'s spawn failed: {event.get('message')}")
                if event.get("ready"):
                    break
            else:
                raise SpawnFailed(f"{self.name}: the progress of {user} ended without a ready event")
        elapsed = time.perf_counter() - t0
        status = await http.get(f"/user/{user}/api/status")
        if status.status_code != 200:
            raise SpawnFailed(f"{self.name}: {user}'s server answered {status.status_code} through the proxy")
        return elapsed

    async def stop(self, http: httpx.AsyncClient, user: str) -> None:
        r = await http.delete(f"/hub/api/users/{user}/server")
        if r.status_code not in (202, 204):
            raise RuntimeError(f"{self.name}: stopping {user} answered {r.status_code} {r.text}")
        deadline = time.monotonic() + STOP_TIMEOUT
        while time.monotonic() < deadline:
            if not (await http.get(f"/hub/api/users/{user}")).json().get("servers"):
                return
            await asyncio.sleep(0.1)
        raise TimeoutError(f"{self.name}: {user}'s server did not stop within {STOP_TIMEOUT} s")

    def servers(self, users: list[str]) -> list[list[psutil.Process]]:
        """The process tree of each of ``users``' servers (hub services and the stock proxy are not)."""
        trees = []
        for proc in psutil.Process(self.hub_pid()).children():
            try:
                if proc.environ().get("JUPYTERHUB_USER") in users:
                    trees.append([proc, *proc.children(recursive=True)])
            except psutil.NoSuchProcess:
                continue
        return trees

    def start_times(self) -> list[float]:
        """The hub's own "User X took N seconds to start" figures, in log order."""
        text = self.log_file.read_text(errors="replace")
        return [float(s) for s in re.findall(r"User \S+ took ([0-9.]+) seconds to start", text)]


class Ours(Target):
    name = "ours"

    def __init__(
        self,
        users: list[str],
        *,
        name: str = "ours",
        site: dict | None = None,
        resources: dict | None = None,
        start_timeout: float = 120,
        **course_keys,
    ) -> None:
        """``course_keys``: more keys of the bench course's course.yaml (assignments, ...)."""
        super().__init__(users)
        self.name = name
        extra = {"resources": resources, **course_keys} if resources else course_keys
        self.hub = RunningHub(
            [course("bench", ["benchprof"], users, **extra)], site=site, start_timeout=start_timeout
        )
        (self.hub.data / "jupyterhub_config.d" / "60-bench.py").write_text(
            f"c.JupyterHub.services.append({{'name': 'bench', 'api_token': {self.token!r}}})\n"
            f"c.JupyterHub.load_roles.append({{'name': 'bench', 'services': ['bench'], 'scopes': {SCOPES!r}}})\n"
        )
        self.url = self.hub.url
        self.log_file = self.hub.data / "logs" / "hub.log"

    def start(self) -> None:
        self.hub.start()

    def hub_pid(self) -> int:
        return self.hub.hub.pid

    def stop_all(self, keep: bool) -> None:
        # RunningHub.stop() deletes every account made since its start, and on a shared machine other
        # test sessions make theirs meanwhile: leave it only the bench's.
        self.hub._accounts_before = {p.pw_name for p in pwd.getpwall()} - set(self.users)
        if keep and self.log_file.parent.exists():  # stop() deletes the hub's folder
            shutil.copytree(self.log_file.parent, self.hub.root.parent / "ours-logs")
        self.hub.stop()
        shutil.rmtree(self.hub.root, ignore_errors=True)


STOCK_CONFIG = """\
c = get_config()  # noqa: F821
c.JupyterHub.bind_url = "http://127.0.0.1:{port}"
c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_port}"
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{api_port}"
c.ConfigurableHTTPProxy.command = [{proxy!r}]
c.JupyterHub.db_url = "sqlite:///{root}/jupyterhub.sqlite"
c.JupyterHub.cookie_secret_file = "{root}/jupyterhub_cookie_secret"
c.JupyterHub.pid_file = "{root}/jupyterhub.pid"
c.JupyterHub.authenticator_class = "dummy"
c.Authenticator.allowed_users = set({users!r})
c.JupyterHub.spawner_class = "simple"
c.SimpleLocalProcessSpawner.home_dir_template = "{root}/homes/{{username}}"
c.Spawner.cmd = [{singleuser!r}]
# The stock spawner runs servers as the hub's own account, here root.
c.Spawner.args = ["--allow-root"]
# Our site's timeouts, so that a loaded burst is measured rather than cut short.
c.Spawner.start_timeout = 120
c.Spawner.http_timeout = 60
c.JupyterHub.services = [{{"name": "bench", "api_token": {token!r}}}]
c.JupyterHub.load_roles = [{{"name": "bench", "services": ["bench"], "scopes": {scopes!r}}}]
"""


class Stock(Target):
    name = "stock"

    def __init__(self, users: list[str], start_timeout: float = 60) -> None:
        super().__init__(users)
        self.start_timeout = start_timeout
        self.root = Path(tempfile.mkdtemp(prefix="stock-"))
        port = free_port()
        self.config = self.root / "jupyterhub_config.py"
        self.config.write_text(
            STOCK_CONFIG.format(
                port=port,
                hub_port=free_port(),
                api_port=free_port(),
                root=self.root,
                users=users,
                proxy=str(BIN / "configurable-http-proxy"),
                singleuser=str(BIN / "jupyterhub-singleuser"),
                token=self.token,
                scopes=SCOPES,
            )
        )
        self.url = f"http://127.0.0.1:{port}"
        self.log_file = self.root / "hub.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.proc = start_stock_hub(self.config, self.root, self.log_file, self.url, self.start_timeout)

    def hub_pid(self) -> int:
        return self.proc.pid

    def stop_all(self, keep: bool) -> None:
        stop_stock_hub(self.proc)
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)


@dataclasses.dataclass
class Burst:
    total: float | None  # seconds until the last server that got ready was (None: none did)
    each: list[float]  # each ready server's seconds to ready
    failures: int  # spawns that failed
    rss: list[float]  # each idle server's RSS, MB
    cpu: list[float]  # CPU seconds each server used until then
    hub_cpu: float  # CPU seconds the hub used until every spawn had ended


async def sequential(targets: list[Target], runs: int) -> tuple[dict[str, list[float]], dict[str, int]]:
    """One user's server started and stopped ``runs`` times on each hub, in turn: the times of the
    spawns that got ready, and the number that failed, of each hub."""
    times: dict[str, list[float]] = {t.name: [] for t in targets}
    failures = dict.fromkeys(times, 0)
    for i in range(-1, runs):  # run -1 warms up: first account creation, caches
        for target in targets:
            run = "warm-up" if i < 0 else i + 1
            async with target.client() as http:
                try:
                    seconds = await target.spawn(http, target.users[0])
                except SpawnFailed as err:
                    seconds = None
                    say(f"  {target.name} spawn {run}: FAILED, {err}")
                await target.stop(http, target.users[0])  # also what a failed spawn left
            if i >= 0 and seconds is None:
                failures[target.name] += 1
            elif i >= 0:
                times[target.name].append(seconds)
            if seconds is not None:
                say(f"  {target.name} spawn {run}: {seconds:.2f} s")
            await asyncio.sleep(0.5)
    return times, failures


async def burst(target: Target) -> Burst:
    """Every user's server started at once, then measured idle, then stopped."""
    hub = psutil.Process(target.hub_pid())
    ready_at: dict[str, float] = {}  # user -> seconds from the burst's start until ready and answering

    async def one(http: httpx.AsyncClient, user: str) -> float | None:
        try:
            seconds = await target.spawn(http, user)
        except SpawnFailed as err:
            say(f"    FAILED: {err}")
            return None
        ready_at[user] = time.perf_counter() - t0
        return seconds

    async with target.client() as http:
        hub_cpu, t0 = cpu_seconds([hub]), time.perf_counter()
        each = [s for s in await asyncio.gather(*(one(http, u) for u in target.users)) if s is not None]
        hub_cpu = cpu_seconds([hub]) - hub_cpu
        await asyncio.sleep(IDLE_SECONDS)
        trees = target.servers(list(ready_at))
        if len(trees) != len(ready_at):
            say(f"    {target.name}: found {len(trees)} servers for {len(ready_at)} ready users")
        rss = [sum(p.memory_info().rss for p in tree) / 2**20 for tree in trees]
        cpu = [cpu_seconds(tree) for tree in trees]
        await asyncio.gather(*(target.stop(http, u) for u in target.users))  # failed ones' leftovers too
    total = max(ready_at.values()) if ready_at else None
    return Burst(total, each, len(target.users) - len(ready_at), rss, cpu, hub_cpu)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan  # every run of a figure failed


def table(
    title: str, unit: str, rows: dict[str, list[float]], fmt: str = "{:.2f}", failures: dict | None = None
) -> None:
    print(f"\n{title} ({unit})")
    print(f"  {'':8}{'median':>10}{'min':>10}{'max':>10}{'n':>5}" + (f"{'failed':>8}" if failures else ""))
    for name, values in rows.items():
        cells = [fmt.format(v) for v in (median(values), min(values), max(values))] if values else ["-"] * 3
        failed = f"{failures[name]:>8}" if failures else ""
        print(f"  {name:8}" + "".join(f"{c:>10}" for c in cells) + f"{len(values):>5}" + failed)


def line(
    figure: str, rows: dict[str, list[float]], n: int, fmt: str = "{:.2f}", failures: dict | None = None
) -> None:
    """The figure's `bench:` line; ``failures``: failed spawns of ours and stock, appended after n."""
    ours, stock = median(rows["ours"]), median(rows["stock"])
    ratio = ours / stock if stock else math.nan
    tail = f" failures_ours={failures['ours']} failures_stock={failures['stock']}" if failures else ""
    print(f"bench: {figure} ours={fmt.format(ours)} stock={fmt.format(stock)} ratio={ratio:.2f} n={n}{tail}")


async def bench(targets: list[Target], args: argparse.Namespace) -> None:
    load_before = os.getloadavg()[0]
    say(f"sequential spawns, alternating {' / '.join(t.name for t in targets)}")
    local, local_failures = await sequential(targets, args.runs)
    log_marks = {t.name: len(t.start_times()) for t in targets}
    bursts: dict[str, list[Burst]] = {t.name: [] for t in targets}
    for run in range(args.burst_runs):
        for target in targets if run % 2 == 0 else targets[::-1]:
            say(f"  {target.name}: {args.burst} simultaneous spawns, run {run + 1}")
            b = await burst(target)
            bursts[target.name].append(b)
            ready = f"{b.total:.2f} s" if b.total is not None else "never"
            say(f"    ready in {ready}, {b.failures} failed; idle server RSS median {median(b.rss):.1f} MB")
            await asyncio.sleep(2)

    def of(field: str) -> dict[str, list[float]]:
        return {name: [v for b in runs for v in getattr(b, field)] for name, runs in bursts.items()}

    title = f"spawn-local: one spawn, start request to ready, {args.runs} alternating runs"
    table(title, "s", local, failures=local_failures)
    line("spawn-local", local, args.runs, failures=local_failures)
    totals = {name: [b.total for b in runs if b.total is not None] for name, runs in bursts.items()}
    burst_failures = {name: sum(b.failures for b in runs) for name, runs in bursts.items()}
    title = f"spawn-burst-{args.burst}: {args.burst} simultaneous spawns, until all are ready"
    table(title, "s", totals, failures=burst_failures)
    line(f"spawn-burst-{args.burst}", totals, args.burst_runs, failures=burst_failures)
    rss = of("rss")
    table(
        f"idle-server-rss: one server and its children, idle {IDLE_SECONDS} s after a burst",
        "MB",
        rss,
        "{:.1f}",
    )
    line("idle-server-rss", rss, len(rss["ours"]), "{:.1f}")

    print("\nfor information (medians):")
    each, cpu = of("each"), of("cpu")
    for t in targets:
        hub_cpu = median([b.hub_cpu for b in bursts[t.name]])
        hub_log = t.start_times()
        seq, rest = hub_log[1 : log_marks[t.name]], hub_log[log_marks[t.name] :]
        print(
            f"  {t.name:5}: in a burst, each server ready after {median(each[t.name]):.2f} s, having used "
            f"{median(cpu[t.name]):.2f} CPU s; the hub used {hub_cpu:.2f} CPU s per burst\n"
            f"         hub log 'took N seconds to start': sequential {median(seq):.2f} s, burst {median(rest):.2f} s"
        )
    print(
        f"  machine: {os.cpu_count()} CPUs, 1-minute load average {load_before:.2f} at the start, "
        f"{os.getloadavg()[0]:.2f} at the end (other work on the machine skews every figure)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="sequential spawns of each")
    parser.add_argument("--burst", type=int, default=20, help="simultaneous spawns (distinct users)")
    parser.add_argument("--burst-runs", type=int, default=3, help="bursts of each")
    parser.add_argument("--keep", action="store_true", help="keep the hubs' logs, as on a failure")
    args = parser.parse_args()
    users = [f"bench{i:02d}" for i in range(1, args.burst + 1)]
    # Both hubs' folders in one of the bench's own, apart from other sessions' test folders.
    # Learners' processes must traverse it to reach their homes.
    workdir = Path(tempfile.mkdtemp(prefix="ailys-bench-"))
    workdir.chmod(0o711)
    tempfile.tempdir = str(workdir)
    targets: list[Target] = [Ours(users), Stock(users)]
    failed = True
    try:
        for target in targets:
            target.start()
        asyncio.run(bench(targets, args))
        failed = False
    finally:
        for target in targets:
            target.stop_all(keep=args.keep or failed)  # a failure's logs are worth reading
        if args.keep or failed:
            say(f"logs kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
