"""Running figures of local and container sessions, read from /proc by the footprint service.

Which processes are a session's: the hub gives every server, local process or container, its
user's name in JUPYTERHUB_USER and its server's in JUPYTERHUB_SERVER_NAME; a container's processes
are host processes too. A server's root is the topmost process of its tree whose command line
runs a jupyterhub singleuser server and whose environment names it. The server's pid is in its
spawner state, which the hub API does not give to a service, and the Unix account alone does not
tell a learner's two servers apart, nor anyone's on a laptop site (one account for all).

A root is looked for only when a running server has none yet (reading every command line is the
dear part of a scan); each sample then reads /proc/<pid>/stat of every process (parent links for
the tree), and statm of the tree's members only. The session's CPU time is cumulative since its
start (sampler.py), so a restarted service loses nothing of a session that still runs.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from .model import Usage, carbon_g, estimated_energy_wh
from .records import LIVE_FIELDS, Footprint
from .sampler import CLOCK_TICKS, parse_proc_stat

PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
# The ref's suffix of a session that ended while the service was down: recorded from the last
# sample the database kept (its CPU time since then is not counted).
LAST_SAMPLE = "~last-sample"
MARKERS = (b"jupyterhub-singleuser", b"batchspawner-singleuser", b"jupyterhub.singleuser")


def server_of(environ: bytes) -> tuple[str, str] | None:
    """(user, server name) from /proc/<pid>/environ's text; None without JUPYTERHUB_USER."""
    user = name = None
    for item in environ.split(b"\0"):
        if item.startswith(b"JUPYTERHUB_USER="):
            user = item[16:].decode(errors="replace")
        elif item.startswith(b"JUPYTERHUB_SERVER_NAME="):
            name = item[23:].decode(errors="replace")
    return (user, name or "") if user else None


def is_server(cmdline: bytes) -> bool:
    return any(marker in cmdline for marker in MARKERS)


def find_roots(proc: Path = Path("/proc")) -> dict[tuple[str, str], int]:
    """{(user, server name): pid of the server's topmost process}, scanning every process."""
    matched: dict[int, tuple[tuple[str, str], int]] = {}  # pid -> (key, ppid)
    for entry in proc.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if not is_server((entry / "cmdline").read_bytes()):
                continue
            key = server_of((entry / "environ").read_bytes())
            ppid, _ = parse_proc_stat((entry / "stat").read_text())
        except (OSError, ValueError, IndexError):  # ended meanwhile, or not ours to read
            continue
        if key:
            matched[int(entry.name)] = (key, ppid)
    roots: dict[tuple[str, str], int] = {}
    # A launcher and the server it starts both match: the root is the one whose parent does not.
    for pid, (key, ppid) in sorted(matched.items()):
        if matched.get(ppid, (None,))[0] != key:
            roots.setdefault(key, pid)
    return roots


def sample(roots: dict, proc: Path = Path("/proc")) -> dict:
    """{key: (CPU seconds, resident bytes)} of each root's process tree, one scan of /proc for
    all; a root that is gone is left out."""
    stats: dict[int, tuple[int, int]] = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = parse_proc_stat((entry / "stat").read_text())
            except (OSError, ValueError, IndexError):
                continue
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    found = {}
    for key, root in roots.items():
        if root not in stats:
            continue
        ticks, rss, todo = 0, 0, [root]
        while todo:
            pid = todo.pop()
            ticks += stats[pid][1]
            try:
                rss += int((proc / str(pid) / "statm").read_text().split()[1]) * PAGE
            except (OSError, ValueError, IndexError):
                pass
            todo += children.get(pid, [])
        found[key] = (ticks / CLOCK_TICKS, rss)
    return found


@dataclass
class Meter:
    """What the service knows of one running session."""

    who: str
    server: str
    kind: str  # local | docker
    course: str | None
    started: float  # epoch seconds, from the hub's server model
    root: int | None = None
    cpu_s: float = 0.0
    peak_rss: int = 0
    last_sample: float = 0.0
    last_activity: float | None = None
    extra: dict = field(default_factory=dict)
    job_id: str | None = None  # a Slurm session's job (footprint/sstat.py), and its start
    job_start: float | None = None
    # Read back from the database at the service's start, not sampled since: if it has ended,
    # its record is its last sample's (a ref ending LAST_SAMPLE says so).
    from_database: bool = False

    @property
    def ref(self) -> str:
        import datetime as dt

        start = dt.datetime.fromtimestamp(self.started, dt.UTC)
        return f"{self.who}/{self.server}@{start:%Y-%m-%dT%H:%M:%SZ}"

    def saved(self) -> dict:
        """The row of records.live_meters."""
        return {"ref": self.ref, **{f: getattr(self, f) for f in LIVE_FIELDS}}

    @classmethod
    def restored(cls, row: dict) -> Meter:
        return cls(**{f: row[f] for f in LIVE_FIELDS}, from_database=True)

    def update(self, cpu_s: float, rss: int, now: float) -> None:
        self.from_database = False
        # Cumulative counters only grow; a child that ended unwaited takes its share with it.
        self.cpu_s = max(self.cpu_s, cpu_s)
        self.peak_rss = max(self.peak_rss, rss)
        self.last_sample = now


def usage_of(cpu_s: float, runtime_s: float, memory_bytes: int) -> Usage:
    """A local session holds no allocation: as many cores as it kept busy (at least one, so an idle
    session's usage is near 0, not undefined), and the memory it held at its peak."""
    from .model import core_usage

    runtime_s = max(runtime_s, 1.0)
    cores = max(1, math.ceil(cpu_s / runtime_s - 1e-9))
    return Usage(
        runtime_s=runtime_s,
        cores=cores,
        core_usage=core_usage(cpu_s, runtime_s, cores),
        memory_gb=memory_bytes / 1024**3,
    )


def footprint_of_meter(meter: Meter, end: float, factors) -> Footprint:
    """The record of a local or container session that ended at ``end`` (epoch seconds)."""
    import datetime as dt

    usage = usage_of(meter.cpu_s, end - meter.started, meter.peak_rss)
    wh = estimated_energy_wh(usage, factors)
    co2 = carbon_g(wh, factors)
    return Footprint.of(
        usage,
        wh,
        co2,
        "estimate",
        kind=meter.kind,
        ref=meter.ref + (LAST_SAMPLE if meter.from_database else ""),
        who=meter.who,
        course=meter.course,
        partition=None,
        start=dt.datetime.fromtimestamp(meter.started, dt.UTC),
        end=dt.datetime.fromtimestamp(end, dt.UTC),
    )


def reclaimed_core_hours(cores: float, duration_s: float, limit_s: float | None) -> float:
    """What the culler gave back by stopping an idle session: its cores for the rest of its limit
    (walltime, or the culler's max_age); without a limit, nothing is counted (it could have run on
    for ever: no honest figure)."""
    if not limit_s:
        return 0.0
    return cores * max(0.0, limit_s - duration_s) / 3600
