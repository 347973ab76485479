"""`make bench-energy`: the time of `ailys energy report` over 100,000 synthetic footprint records
(goal: 2 s or less), the whole command as an admin runs it (Python start, site file, query, table).

The records are spread over 40 courses, 3 partitions, the 4 kinds and both methods, in the
hub's default database (SQLite in the site's data_dir), written once. There is no stock tool
to compare with: the figure is ours alone.

energy-overhead: the footprint service's own CPU seconds per session-hour. 20 sessions shaped as
the hub's are (a process whose command line runs jupyterhub-singleuser with JUPYTERHUB_USER in its
environment, and a kernel-like child), a hub API that lists them (a static file served by another
process, so its CPU is not ours), and the service's Sessions.tick run as it runs in an hour: a
list every 10 s, and the /proc reads of each session every sample_every (60 s by default); its
process time, divided by 20.

    .venv/bin/python -m tests.bench.energy [--records 100000] [--runs 3] [--sessions 20]
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from footprint.records import KINDS, Footprint, connect, store

CHECKOUT = Path(__file__).resolve().parents[2]


def synthetic(count: int, seed: int = 14) -> list[Footprint]:
    rng = random.Random(seed)
    start = dt.datetime(2026, 9, 1, tzinfo=dt.UTC)
    records = []
    for i in range(count):
        kind = KINDS[i % len(KINDS)]
        begin = start + dt.timedelta(minutes=rng.randrange(0, 90 * 24 * 60))
        hours = rng.uniform(0.05, 4)
        cores = rng.choice([1, 2, 4, 8])
        usage = rng.uniform(0.02, 1)
        wh = hours * (cores * 7.5 * usage + 4 * 0.3725) * 1.56
        records.append(
            Footprint(
                kind=kind,
                ref=f"bench-{i}",
                who=f"learner{i % 900:03d}",
                course=f"course-{i % 40:02d}",
                partition=None if kind in ("local", "docker") else rng.choice(["cpu", "gpu", "big"]),
                start=begin,
                end=begin + dt.timedelta(hours=hours),
                core_hours=cores * hours,
                core_usage=usage,
                memory_gb_hours=4 * hours,
                gpu_hours=0.0,
                energy_wh=wh,
                energy_wh_low=wh * 0.6,
                energy_wh_high=wh * 1.1,
                co2_g=wh * 0.05128,
                co2_g_low=wh * 0.6 * 0.03,
                co2_g_high=wh * 1.1 * 0.05128,
                method="measured" if i % 10 == 0 else "estimate",
            )
        )
    return records


SERVER = "import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(3600)']); time.sleep(3600)"


def overhead(sessions: int, runs: int) -> list[float]:
    """CPU seconds of the service per session-hour, one figure per run."""
    import asyncio
    import json
    import os

    from footprint.service import FootprintApp
    from tests.services import free_port

    with tempfile.TemporaryDirectory(prefix="nrg-overhead-") as tmp:
        root = Path(tmp)
        (root / "courses").mkdir()
        (root / "data").mkdir()
        (root / "api").mkdir()
        site = root / "nrg-overhead.yaml"
        site.write_text(
            yaml.safe_dump({"name": "nrg-overhead", "data_dir": "data", "courses_dir": "courses"})
        )
        now = dt.datetime.now(dt.UTC).isoformat()
        server = {"started": now, "last_activity": now, "ready": True, "user_options": {}}
        users = [{"name": f"bench-{i:02d}", "groups": [], "servers": {"": server}} for i in range(sessions)]
        (root / "api" / "users").write_text(json.dumps(users))
        port = free_port()
        api = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "http.server",
                str(port),
                "--bind",
                "127.0.0.1",
                "--directory",
                str(root / "api"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", SERVER, "/venv/bin/jupyterhub-singleuser"],
                env={**os.environ, "JUPYTERHUB_USER": u["name"], "JUPYTERHUB_SERVER_NAME": ""},
            )
            for u in users
        ]
        try:
            os.environ["JUPYTERHUB_API_URL"] = f"http://127.0.0.1:{port}/"
            os.environ["JUPYTERHUB_API_TOKEN"] = "bench"  # the static API reads none
            app = FootprintApp(str(site), "/services/footprint/")
            ticks = 3600 // app.look  # the service looks every 10 s and samples every 60 s
            figures = []

            async def hour() -> float:
                deadline = time.monotonic() + 60
                while time.monotonic() < deadline:  # the API server and the sessions have started
                    try:
                        await app.sessions.tick()
                        if len(app.sessions.meters) == sessions and all(
                            m.root for m in app.sessions.meters.values()
                        ):
                            break
                    except OSError:
                        pass
                    await asyncio.sleep(0.1)
                else:
                    raise TimeoutError(f"the {sessions} sessions were not all found in /proc within 60 s")
                for meter in app.sessions.meters.values():
                    meter.root = None  # each run finds the roots again, as a service start does,
                    meter.last_sample = 0.0  # and samples every session at its first look
                began, clock = time.process_time(), time.time()
                for tick in range(ticks):
                    await app.sessions.tick(now=clock + tick * app.look)
                return time.process_time() - began

            for run in range(runs):
                spent = asyncio.run(hour())
                found = sum(1 for m in app.sessions.meters.values() if m.root)
                figures.append(spent / sessions)
                print(
                    f"run {run + 1}: {ticks} samples of {found} sessions, {spent:.3f} CPU s: {figures[-1]:.4f} s/session-hour"
                )
            return figures
        finally:
            kernels = children_of(procs)  # before their parents go: then they are orphans
            for p in [api, *procs, *kernels]:
                p.kill()
            for p in [api, *procs]:
                p.wait()


def children_of(procs) -> list:
    import psutil

    found = []
    for p in procs:
        try:
            found += psutil.Process(p.pid).children(recursive=True)
        except psutil.Error:
            continue
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=20)
    args = parser.parse_args()
    per_hour = overhead(args.sessions, args.runs)
    with tempfile.TemporaryDirectory(prefix="nrg-bench-") as tmp:
        root = Path(tmp)
        (root / "courses").mkdir()
        (root / "data").mkdir()
        site = root / "nrg-bench.yaml"
        site.write_text(yaml.safe_dump({"name": "nrg-bench", "data_dir": "data", "courses_dir": "courses"}))
        began = time.monotonic()
        engine = connect(f"sqlite:///{root / 'data' / 'jupyterhub.sqlite'}")
        stored = store(engine, synthetic(args.records))
        engine.dispose()
        print(f"{stored} records written in {time.monotonic() - began:.1f} s")
        command = [sys.executable, "-m", "hub_config.cli", "energy", "report", "--site", str(site)]
        times = []
        for run in range(args.runs):
            began = time.monotonic()
            result = subprocess.run(command, capture_output=True, text=True, cwd=CHECKOUT, timeout=300)
            times.append(time.monotonic() - began)
            if result.returncode != 0:
                print(result.stderr, file=sys.stderr)
                return 1
            lines = result.stdout.splitlines()
            print(f"run {run + 1}: {times[-1]:.2f} s, {len(lines) - 2} rows; total: {lines[-1]}")
    print(f"bench: energy-report-{args.records // 1000}k ours={statistics.median(times):.2f} n={args.runs}")
    print(f"bench: energy-overhead ours={statistics.median(per_hour):.4f} n={args.runs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
