"""Running figures of Slurm sessions: which running job is a session's (squeue), and the CPU time
its batch step has used so far (sstat, as the learner).

A learner's server runs in its job's batch step (spawners/slurm's batch script execs the launcher,
no srun), so ``sstat --jobs <id>.batch`` holds the whole session. sstat asks the node's slurmd,
which answers only the job's owner (or root, SlurmUser): a hub that is not root runs it through
its sudo rule, as the learner, with exactly the arguments of ``sstat_argv`` (the rule allows no
other: docs/design-notes.md). squeue runs as the hub's own account: it lists every user's jobs
(unless slurm.conf's PrivateData hides them).

The parsing functions are pure; ``running_jobs`` and ``job_cpu_seconds`` run the commands.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import shlex
from dataclasses import dataclass

from .sacct import parse_time, parse_total_cpu

# sudoers compares arguments literally (or as one regular expression): a fixed form, no '=' or ','
# (which sudoers would need escaped), the job id the only part that changes.
SSTAT_ARGS = ("--noheader", "--parsable2", "--format", "TRESUsageInTot", "--jobs")
# The sudoers line of the rule (docs/design-notes.md and tests/integration/test_slurm_sudo.py).
SUDOERS_ARGS = "^" + " ".join(SSTAT_ARGS) + " [0-9]+[.]batch$"
SQUEUE_ARGV = ("squeue", "--noheader", "--states=RUNNING", "--format=%i|%u|%j|%S")
_JOB_ID = re.compile(r"^[0-9]+$")


@dataclass(frozen=True)
class RunningJob:
    job_id: str
    user: str
    name: str  # ailys-<course> for a learner's session
    start: dt.datetime | None


def sstat_argv(job_id: str) -> list[str]:
    if not _JOB_ID.match(job_id):  # an array task (123_4) or a step is never a session's job
        raise ValueError(f"not a session's job id: {job_id!r}")
    return ["sstat", *SSTAT_ARGS, f"{job_id}.batch"]


def as_learner(argv: list[str], exec_prefix: str, username: str) -> list[str]:
    """``argv`` through the site's exec_prefix (spawner.slurm.exec_prefix), as the spawner does."""
    return [*shlex.split(exec_prefix.format(username=username)), *argv] if exec_prefix else argv


def parse_squeue(text: str) -> list[RunningJob]:
    jobs = []
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) == 4 and _JOB_ID.match(parts[0]):
            jobs.append(RunningJob(parts[0], parts[1], parts[2], parse_time(parts[3])))
    return jobs


def parse_sstat_cpu(text: str) -> float | None:
    """CPU seconds from sstat's TRESUsageInTot (cpu=00:01:02,energy=0,mem=15000K,...); None when
    sstat printed no line (the step has not started, or has just ended)."""
    for line in text.splitlines():
        for item in line.strip().split(","):
            name, _, value = item.partition("=")
            if name == "cpu":
                return parse_total_cpu(value)
    return None


def session_job(jobs: list[RunningJob], who: str, course: str | None, since: float) -> RunningJob | None:
    """The running job of ``who``'s session in ``course`` that started after the server's start
    (``since``, epoch seconds; a minute of clock skew allowed), the latest if several."""

    def of_session(job: RunningJob) -> bool:
        if job.user != who:
            return False
        if course:
            return job.name == f"ailys-{course}"
        return job.name.startswith("ailys-") and not job.name.startswith("ailys-grade")

    mine = [j for j in jobs if of_session(j)]
    mine = [j for j in mine if j.start is None or j.start.timestamp() >= since - 60]
    return max(mine, key=lambda j: j.start.timestamp() if j.start else 0, default=None)


async def _run(argv: list[str], env: dict[str, str], timeout: float) -> str | None:
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
    except OSError:
        return None
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None
    return out.decode(errors="replace") if proc.returncode == 0 else None


async def running_jobs(env: dict[str, str], timeout: float = 30) -> list[RunningJob] | None:
    """Every running job (one squeue for all sessions); None when squeue failed."""
    out = await _run(list(SQUEUE_ARGV), env, timeout)
    return None if out is None else parse_squeue(out)


async def job_cpu_seconds(
    job_id: str, who: str, exec_prefix: str, env: dict[str, str], timeout: float = 30
) -> float | None:
    """CPU seconds the session's batch step has used so far; None when sstat gave nothing."""
    out = await _run(as_learner(sstat_argv(job_id), exec_prefix, who), env, timeout)
    return None if out is None else parse_sstat_cpu(out)


async def measure(meters: dict, env: dict[str, str], exec_prefix: str, now: float) -> None:
    """Update each Slurm session's meter (footprint.live.Meter) with its job's CPU time so far:
    one squeue for all, then one sstat per session, at once."""
    jobs = await running_jobs(env)
    if jobs is None:
        return

    async def one(meter) -> None:
        job = session_job(jobs, meter.who, meter.course, meter.started)
        if job is None:
            return
        cpu = await job_cpu_seconds(job.job_id, meter.who, exec_prefix, env)
        if cpu is not None:
            meter.job_id = job.job_id
            meter.job_start = job.start.timestamp() if job.start else meter.started
            meter.update(cpu, 0, now)

    await asyncio.gather(*(one(m) for m in meters.values()))
