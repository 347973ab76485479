"""CPU time of a local session's process tree or of a container's cgroup, read from /proc and
/sys/fs/cgroup directly (psutil is a test dependency only). The parsing functions are pure and
take the files' text; the readers around them do the I/O.

A process tree's CPU time is, over its live processes, utime + stime + cutime + cstime: each child
that ended and was waited for is in its parent's cutime/cstime, so it is counted once. A child
that ended unwaited (a zombie's parent gone) is lost: a lower bound, fine for an estimate.
"""

from __future__ import annotations

import os
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def parse_proc_stat(text: str) -> tuple[int, int]:
    """/proc/<pid>/stat: (parent pid, CPU ticks of the process and its waited-for children). The
    command name, in parentheses, may hold spaces and parentheses: the fields follow the last ')'."""
    fields = text[text.rindex(")") + 2 :].split()
    # After the name: state(3) ppid(4) ... utime(14) stime(15) cutime(16) cstime(17), numbered from 1.
    ppid = int(fields[1])
    ticks = sum(int(f) for f in fields[11:15])
    return ppid, ticks


def parse_cgroup_cpu_stat(text: str) -> float:
    """cgroup v2 cpu.stat: CPU seconds of every process the group ever held (usage_usec)."""
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name == "usage_usec":
            return int(value) / 1e6
    raise ValueError("no usage_usec in cpu.stat")


def parse_cpuacct_usage(text: str) -> float:
    """cgroup v1 cpuacct.usage (nanoseconds) in CPU seconds."""
    return int(text.strip()) / 1e9


def tree_cpu_seconds(
    stats: dict[int, tuple[int, int]], root: int, ticks_per_second: int = CLOCK_TICKS
) -> float:
    """CPU seconds of ``root`` and its live descendants, from {pid: parse_proc_stat(...)}."""
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0, [root] if root in stats else []
    while todo:
        pid = todo.pop()
        total += stats[pid][1]
        todo += children.get(pid, [])
    return total / ticks_per_second


def read_proc_stats(proc: Path = Path("/proc")) -> dict[int, tuple[int, int]]:
    """parse_proc_stat of every process (one that ends meanwhile is skipped)."""
    stats = {}
    for entry in proc.iterdir():
        if entry.name.isdigit():
            try:
                stats[int(entry.name)] = parse_proc_stat((entry / "stat").read_text())
            except (OSError, ValueError, IndexError):
                continue
    return stats


def process_tree_cpu_seconds(root: int, proc: Path = Path("/proc")) -> float:
    """CPU seconds a local session's server (pid ``root``) and its kernels have used so far."""
    return tree_cpu_seconds(read_proc_stats(proc), root)


def cgroup_cpu_seconds(cgroup: Path) -> float:
    """CPU seconds of a container's cgroup folder (v2 cpu.stat, or v1 cpuacct.usage)."""
    if (cgroup / "cpuacct.usage").exists():  # v1 (its cpu.stat has no usage_usec)
        return parse_cpuacct_usage((cgroup / "cpuacct.usage").read_text())
    return parse_cgroup_cpu_stat((cgroup / "cpu.stat").read_text())
