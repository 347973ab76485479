"""`make bench-collab`: six members typing into one notebook on a team server.

Ours is a team account's server started by our hub (tests.services.hub.RunningHub, the local site
as root), reached through the proxy with a token holding the team-server scopes. Stock is a plain
`jupyter lab` with jupyter-collaboration, started by hand from the same environment. Both serve
the same notebook, and six browserless clients of the collaboration protocol (pycrdt's Provider
over a websocket, as JupyterLab's docprovider speaks it) join its room.

Each round, every client in turn appends a marker to the first cell's source; the time from that
edit to its arrival in each of the other five documents is one sample. Ours and stock alternate,
round by round. Printed: a table, then
`bench: collab-latency p50=… p95=… stock_p50=… stock_p95=… n=…` (seconds, ours), and
`bench: team-server-rss ours=… stock=… ratio=…` (MiB, the server process after the rounds).

    .venv/bin/python -m tests.bench.collab [--rounds 10] [--clients 6]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
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
import websockets
from pycrdt import Array, Doc, Map, Provider, Text

from tests.services import free_port
from tests.services.hub import RunningHub, course, make_team_folder, one_cell_notebook, wait_until

SLUG = "t15b-bench"
TEAM = f"team-{SLUG}-crdt"  # names.team_name(SLUG, "crdt")
MEMBERS = [f"t15b-b{i}" for i in range(1, 7)]
NOTEBOOK = "bench.ipynb"
ARRIVAL_TIMEOUT = 10.0
BIN = Path(sys.executable).parent


def say(*args) -> None:
    print(*args, file=sys.stderr, flush=True)


class WebsocketChannel:
    """pycrdt's Channel over a `websockets` connection."""

    def __init__(self, ws, path: str):
        self._ws, self._path = ws, path

    @property
    def path(self) -> str:
        return self._path

    def __aiter__(self):
        return self

    async def __anext__(self) -> bytes:
        try:
            return await self.recv()
        except websockets.ConnectionClosed:
            raise StopAsyncIteration from None

    async def send(self, message: bytes) -> None:
        await self._ws.send(message)

    async def recv(self) -> bytes:
        return bytes(await self._ws.recv())


class Member:
    """One collaborator: a document synced with the room, and when each marker arrived."""

    def __init__(self, name: str):
        self.name, self.doc, self.arrived = name, Doc(), {}

    def source(self) -> Text | None:
        cells = self.doc.get("cells", type=Array)
        if len(cells) == 0:
            return None
        cell = cells[0]
        return cell["source"] if isinstance(cell, Map) else None

    def watch(self) -> None:
        """Time each marker's arrival from the source's own change events (the document cannot be
        read inside them: they run in its transaction)."""

        def on_change(event) -> None:
            now = time.perf_counter()
            for change in event.delta:
                for marker in str(change.get("insert", "")).split("#")[1:]:
                    self.arrived.setdefault(marker.strip(), now)

        self._subscription = self.source().observe(on_change)  # dropped, it would stop


class Server:
    """Where a room lives: base URL, headers, the process to measure."""

    def __init__(self, label: str, http: str, headers: dict, process: psutil.Process):
        self.label, self.http, self.headers, self.process = label, http.rstrip("/"), headers, process

    async def room_url(self) -> str:
        async with httpx.AsyncClient(headers=self.headers, timeout=30) as client:
            r = await client.put(
                f"{self.http}/api/collaboration/session/{NOTEBOOK}",
                json={"format": "json", "type": "notebook"},
            )
            r.raise_for_status()
            s = r.json()
        ws = self.http.replace("http://", "ws://", 1)
        return (
            f"{ws}/api/collaboration/room/{s['format']}:{s['type']}:{s['fileId']}?sessionId={s['sessionId']}"
        )

    def rss_mib(self) -> float:
        return self.process.memory_info().rss / 2**20


async def one_round(server: Server, clients: int, round_no: int) -> list[float]:
    """Every member appends a marker in turn; seconds from each edit to each other member."""
    url = await server.room_url()
    members = [Member(m) for m in MEMBERS[:clients]]
    samples: list[float] = []
    async with contextlib.AsyncExitStack() as stack:
        for m in members:
            ws = await stack.enter_async_context(
                websockets.connect(url, additional_headers=server.headers, max_size=None)
            )
            provider = await stack.enter_async_context(Provider(m.doc, WebsocketChannel(ws, url)))
            await asyncio.wait_for(provider.synced.wait(), ARRIVAL_TIMEOUT)
        deadline = time.monotonic() + ARRIVAL_TIMEOUT
        while not all(m.source() is not None for m in members):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{server.label}: the notebook never reached every member")
            await asyncio.sleep(0.01)
        for m in members:
            m.watch()
        for i, author in enumerate(members):
            marker = f"r{round_no}m{i}{secrets.token_hex(2)}"
            source = author.source()
            sent = time.perf_counter()
            with author.doc.transaction(origin=author.name):
                source += f" #{marker}"
            others = [m for m in members if m is not author]
            end = time.monotonic() + ARRIVAL_TIMEOUT
            while not all(marker in m.arrived for m in others):
                if time.monotonic() > end:
                    raise TimeoutError(f"{server.label}: marker {marker} did not reach every member")
                await asyncio.sleep(0.001)
            samples.extend(m.arrived[marker] - sent for m in others)
    return samples


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


# --- the two servers ---------------------------------------------------------------------------


@contextlib.contextmanager
def ours():
    if os.geteuid() != 0:
        sys.exit("bench-collab: run as root (a team server runs as the team account)")
    project = course(
        SLUG,
        ["t15b-bprof"],
        MEMBERS,
        kind="project-team",
        teams=[{"name": "crdt", "members": MEMBERS, "mentors": ["t15b-bprof"]}],
    )
    token = secrets.token_hex(32)
    running = RunningHub(
        [project],
        site={
            "gallery": {"enabled": False},
            "energy": {"service": {"enabled": False}},
            "teams": {"max_members": 6},
        },
    )
    drop_in = running.data / "jupyterhub_config.d" / "60-bench-collab.py"
    drop_in.write_text(
        f"c.JupyterHub.services.append({{'name': 'bench-collab', 'api_token': {token!r}}})\n"
        "c.JupyterHub.load_roles.append({'name': 'bench-collab', 'services': ['bench-collab'], "
        f"'scopes': ['servers!user={TEAM}', 'access:servers!user={TEAM}']}})\n"
    )
    folder = running.catalogue.data_dir / "teams" / TEAM
    made_group = make_team_folder(folder, TEAM, {NOTEBOOK: one_cell_notebook("x = 1")})
    headers = {"Authorization": f"token {token}"}
    try:
        say("bench-collab: starting our hub (a minute or two on a loaded machine)")
        running.start()
        api = httpx.Client(base_url=f"{running.url}/hub/api", headers=headers, timeout=30)
        wait_until(lambda: api.get(f"/users/{TEAM}").status_code == 200, 120, "the team account")
        api.post(f"/users/{TEAM}/server").raise_for_status()
        wait_until(lambda: running.server_ready(TEAM), 120, "the team server")
        proc = next(
            p
            for p in psutil.process_iter(["username", "cmdline"])
            if p.info["username"] == TEAM and "jupyterhub-singleuser" in " ".join(p.info["cmdline"] or [])
        )
        yield Server("ours", f"{running.url}/user/{TEAM}", headers, proc)
    finally:
        running.stop()
        if made_group:
            subprocess.run(["groupdel", TEAM], capture_output=True)


@contextlib.contextmanager
def stock():
    """JupyterLab with jupyter-collaboration, by hand: its own root folder and token."""
    root = Path(tempfile.mkdtemp(prefix="t15b-bench-stock-"))
    (root / NOTEBOOK).write_text(one_cell_notebook("x = 1"))
    token, port = secrets.token_hex(16), free_port()
    env = {
        **os.environ,
        "JUPYTER_CONFIG_DIR": str(root / ".jupyter"),
        "JUPYTER_RUNTIME_DIR": str(root / "run"),
    }
    log = (root / "lab.log").open("w")
    proc = subprocess.Popen(
        [
            str(BIN / "jupyter-lab"),
            "--no-browser",
            "--allow-root",
            f"--port={port}",
            "--ip=127.0.0.1",
            f"--IdentityProvider.token={token}",
            f"--ServerApp.root_dir={root}",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=root,
    )
    headers = {"Authorization": f"token {token}"}
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: proc.poll() is None and _answers(f"{url}/api/status", headers) or proc.poll() is not None,
            120,
            "stock JupyterLab",
        )
        if proc.poll() is not None:
            raise RuntimeError(f"stock JupyterLab exited: {(root / 'lab.log').read_text()[-2000:]}")
        yield Server("stock", url, headers, psutil.Process(proc.pid))
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _answers(url: str, headers: dict) -> bool:
    try:
        return httpx.get(url, headers=headers, timeout=5).status_code == 200
    except httpx.HTTPError:
        return False


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--clients", type=int, default=6)
    args = parser.parse_args()
    samples: dict[str, list[float]] = {"ours": [], "stock": []}
    with ours() as our_server, stock() as stock_server:
        for r in range(args.rounds):
            for server in (our_server, stock_server):  # alternate, round by round
                got = asyncio.run(one_round(server, args.clients, r))
                samples[server.label].extend(got)
                say(
                    f"round {r + 1}/{args.rounds} {server.label}: median {statistics.median(got) * 1000:.1f} ms"
                )
        rss = {"ours": our_server.rss_mib(), "stock": stock_server.rss_mib()}
    print(f"{'server':<8}{'p50 s':>10}{'p95 s':>10}{'max s':>10}{'samples':>9}{'RSS MiB':>10}")
    for label, values in samples.items():
        print(
            f"{label:<8}{statistics.median(values):>10.4f}{percentile(values, 0.95):>10.4f}"
            f"{max(values):>10.4f}{len(values):>9}{rss[label]:>10.1f}"
        )
    o, s = samples["ours"], samples["stock"]
    print(
        f"bench: collab-latency p50={statistics.median(o):.4f} p95={percentile(o, 0.95):.4f} "
        f"stock_p50={statistics.median(s):.4f} stock_p95={percentile(s, 0.95):.4f} n={len(o)}"
    )
    print(
        f"bench: team-server-rss ours={rss['ours']:.1f} stock={rss['stock']:.1f} "
        f"ratio={rss['ours'] / rss['stock']:.2f} unit=MiB"
    )


if __name__ == "__main__":
    main()
