"""Records of local autograde runs (grading/autograde/engine.py's workers): one per graded
submission, kind autograde, named by course and assignment; the run total is their sum
(pages.assignment_runs, the report). Slurm arrays are recorded from sacct (collect.py), their
job name ailys-grade-<course>/<assignment> carrying the same two names.

A task held one core of the hub host (a worker runs one kernel at a time) and the course's
grading memory limit (its sandbox's allocation, as for a Slurm task's --mem).
"""

from __future__ import annotations

import datetime as dt

from .model import Usage, carbon_g, core_usage, estimated_energy_wh
from .records import Footprint


def local_task_records(
    usage: list[dict], course: str, assignment: str, who: str, memory_bytes: int, factors
) -> list[Footprint]:
    records = []
    for task in usage:
        runtime = max(task["end"] - task["start"], 0.001)
        used = Usage(runtime, 1, core_usage(task["cpu_s"], runtime, 1), memory_bytes / 1024**3)
        wh = estimated_energy_wh(used, factors)
        co2 = carbon_g(wh, factors)
        start = dt.datetime.fromtimestamp(task["start"], dt.UTC)
        records.append(
            Footprint.of(
                used,
                wh,
                co2,
                "estimate",
                kind="autograde",
                ref=f"local:{course}/{assignment}/{task['student']}@{start:%Y-%m-%dT%H:%M:%S.%fZ}",
                who=who,
                course=course,
                partition=None,
                start=start,
                end=dt.datetime.fromtimestamp(task["end"], dt.UTC),
                assignment=assignment,
            )
        )
    return records


def store_local_run(catalogue, summary, course: str, assignment: str, settings) -> int:
    """Store a local run's task records in the hub database; how many were new."""
    import getpass

    from hub_config.appliers.storage import database_url

    from .model import factors_for
    from .records import connect, store

    if not summary.usage:
        return 0
    who = settings.user or getpass.getuser()
    records = local_task_records(
        summary.usage, course, assignment, who, settings.memory, factors_for(catalogue.site.energy, None)
    )
    engine = connect(database_url(catalogue))
    try:
        return store(engine, records)
    finally:
        engine.dispose()


def record_local_run(catalogue, summary, course: str, assignment: str, settings) -> str | None:
    """store_local_run for a caller whose grades are saved whatever happens here (`ailys grade`,
    the exchange's autograde on submit, the formgrader's button): the reason when the records
    could not be stored, else None."""
    if not summary.usage:  # a Slurm array's come from sacct
        return None
    try:
        store_local_run(catalogue, summary, course, assignment, settings)
    except Exception as error:  # noqa: BLE001 - the database may be down: the grades stand
        return f"{type(error).__name__}: {error}"
    return None
