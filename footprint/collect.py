"""From Slurm accounting to footprint records: `ailys energy collect` reads sacct for the jobs
that ended since the last record and stores one record per attempt of each of our jobs
(spawners/slurm names them ailys-<course>, grading arrays ailys-grade-<course>/<assignment>).

``footprint_of_job`` is pure (the model applied to one sacct record); ``collect`` runs sacct.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
from dataclasses import dataclass

from .model import Usage, carbon_g, estimated_energy_wh, factors_for, measured_energy_wh
from .records import Footprint, connect, latest_end, store
from .sacct import SlurmJob, parse, sacct_argv

# A job ending just before the last record's end may reach slurmdbd after it: read again from a
# little earlier (storing is idempotent, so the overlap costs nothing).
OVERLAP = dt.timedelta(hours=1)
FIRST_WINDOW = dt.timedelta(days=7)


def footprint_of_job(job: SlurmJob, energy) -> Footprint:
    """The record of one ended job attempt; ``energy``: the site's hub_config.schema.Energy."""
    factors = factors_for(energy, job.partition or None)
    usage = Usage(
        runtime_s=job.elapsed_s,
        cores=job.cores,
        core_usage=job.core_usage,
        memory_gb=job.memory_bytes / 1024**3,
        gpus=job.gpus,
    )
    if job.measured:
        wh, method = measured_energy_wh(job.consumed_energy_j, factors), "measured"
    else:
        wh, method = estimated_energy_wh(usage, factors), "estimate"
    co2 = carbon_g(wh, factors)
    return Footprint.of(
        usage,
        wh,
        co2,
        method,
        kind=job.kind,
        ref=job.record_id,
        who=job.user,
        course=job.course,
        partition=job.partition or None,
        start=job.start,
        end=job.end,
        assignment=job.assignment,
    )


def footprints_of(jobs: list[SlurmJob], energy) -> list[Footprint]:
    """Records of our jobs that ran and ended (a job cancelled while pending cost nothing)."""
    return [footprint_of_job(j, energy) for j in jobs if j.ours and j.ended and j.started and j.end]


@dataclass(frozen=True)
class Collected:
    since: dt.datetime
    read: int  # allocations sacct gave
    new: int  # records stored now


# What the Slurm commands (sacct, squeue, sstat) get of this process's environment: nothing else,
# so the footprint service's hub token never reaches a child (TZ: sacct's times are local).
SLURM_ENV_KEPT = ("PATH", "LANG", "LC_ALL", "TZ", "HOME", "USER", "SLURM_CONF")


def sacct_env(slurm_conf) -> dict[str, str]:
    env = {k: os.environ[k] for k in SLURM_ENV_KEPT if k in os.environ}
    if slurm_conf:
        env["SLURM_CONF"] = str(slurm_conf)
    return env


def collect(
    database_url: str, energy, slurm_conf=None, since: dt.datetime | None = None, timeout: float = 120
) -> Collected:
    """Read sacct since ``since`` (default: the last Slurm record's end, less OVERLAP; a week
    back when there is none) and store the new records."""
    engine = connect(database_url)
    try:
        if since is None:
            last = latest_end(engine, ("slurm", "autograde"))
            since = last - OVERLAP if last else dt.datetime.now(dt.UTC) - FIRST_WINDOW
        result = subprocess.run(
            sacct_argv(since, dt.datetime.now(dt.UTC)),
            env=sacct_env(slurm_conf),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if result.returncode != 0:
            raise RuntimeError(f"sacct failed (exit {result.returncode}): {result.stderr.strip()}")
        jobs = parse(result.stdout)
        return Collected(since=since, read=len(jobs), new=store(engine, footprints_of(jobs, energy)))
    finally:
        engine.dispose()
