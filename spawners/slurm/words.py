"""What learners read about their Slurm job: its resources, why it is pending, why it ended. Pure."""

from __future__ import annotations

import datetime as dt
import pwd

from hub_config.units import format_duration, format_size

from .client import JobStatus, QueuePlace, has_ended

# Pending reasons (squeue's %r) in words a learner understands; others are shown as Slurm says them.
PENDING_REASONS = {
    "Resources": "the resources it needs are in use",
    "Priority": "jobs ahead of it have a higher priority",
    "None": "Slurm has not looked at it yet",
    "BeginTime": "it may not start yet",
    "Dependency": "it waits for another job",
    "ReqNodeNotAvail": "a node it needs is unavailable",
    "PartitionDown": "its partition is down",
    "PartitionInactive": "its partition is inactive",
    "Reservation": "it waits for its reservation to start",
    "ReservationDeleted": "its reservation was deleted",
    "QOSMaxJobsPerUserLimit": "you already run as many jobs as your QOS allows",
    "AssocMaxJobsLimit": "your account runs as many jobs as it may",
    "AssocGrpCpuLimit": "your account uses all the CPUs it may",
    "AssocGrpGRES": "your account uses all the GPUs it may",
    "JobHeldAdmin": "an administrator holds it",
    "JobHeldUser": "it is held",
}

# How a job that ended outside the hub is explained to its learner, by sacct's State (first word).
END_REASONS = {
    "CANCELLED": "it was cancelled{by}",
    "TIMEOUT": "it reached its time limit{limit}",
    "NODE_FAIL": "its node{node} failed",
    "OUT_OF_MEMORY": "it ran out of memory",
    "FAILED": "the server exited with an error (exit code {exit_code})",
    "COMPLETED": "the server stopped by itself",
    "PREEMPTED": "a job of higher priority took its place",
    "BOOT_FAIL": "its node could not boot",
    "DEADLINE": "it reached its deadline",
}


def format_resource(key: str, value: int) -> str:
    """One resource of a launch (cpus, memory, gpus, walltime) as the learner reads and writes it."""
    if key == "memory":
        return format_size(value)
    if key == "walltime":
        return format_duration(value)
    if key == "cpus":
        return f"{value} CPU core{'s' if value != 1 else ''}"
    return f"{value} GPU{'s' if value != 1 else ''}"


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def pending_message(
    job_id: str, status: JobStatus | None, place: QueuePlace | None, now: dt.datetime | None = None
) -> str:
    """Where a pending job stands: its place in its partition's queue, Slurm's estimated start and
    the pending reason; from squeue's status alone when the place is not known."""
    if place is None:
        partition = status.partition if status else ""
        reason = status.reason if status else ""
        where = f" in partition {partition}" if partition else ""
        because = f"; reason: {reason} ({PENDING_REASONS.get(reason, reason)})" if reason else ""
        return f"Job {job_id} is waiting in the queue{where}{because}."
    if place.start:
        try:
            start = dt.datetime.fromisoformat(place.start)
            minutes = max(0, round((start - (now or dt.datetime.now())).total_seconds() / 60))
            estimate = f"Slurm's estimated start: {start:%H:%M} (in about {minutes} min)"
        except ValueError:
            estimate = f"Slurm's estimated start: {place.start}"
    else:
        estimate = "no estimated start from Slurm yet"
    return (
        f"Job {job_id} is {ordinal(place.position)} of {place.pending} pending in partition "
        f"{place.partition}; {estimate}; reason: {place.reason} "
        f"({PENDING_REASONS.get(place.reason, place.reason)})."
    )


def _name_of_uid(uid: str) -> str:
    try:
        return pwd.getpwuid(int(uid)).pw_name
    except (KeyError, ValueError):
        return f"uid {uid}"


def end_of_job(
    job_id: str,
    record: dict[str, str],
    source: str,
    status: JobStatus | None,
    *,
    course: str,
    starting: bool,
    output: str,
    name_of_uid=_name_of_uid,
) -> dict:
    """How a job ended, for its learner and the hub's state: ``record`` is sacct's or scontrol's
    (``source``) when it has the end, else squeue's last ``status`` is all there is. ``starting``:
    the job ended before its server answered; ``output``: the job's output file, shown then."""
    if has_ended(record):
        state_words, exit_code, reason = record["State"], record["ExitCode"], record["Reason"]
        slurm_says = f"{source}: State={state_words}, ExitCode={exit_code}, Reason={reason}"
    else:  # neither has it any more (or not yet): what squeue last said
        record = {}
        state_words, reason = (status.state, status.reason) if status else ("", "")
        exit_code = ""
        seen = status.state or status.detail if status else "nothing"
        slurm_says = f"no record of its end; squeue said {seen}"
    state = state_words.split(" ")[0]
    by = ""
    if state == "CANCELLED" and " by " in state_words:
        by = f" by {name_of_uid(state_words.rsplit(' ', 1)[-1])}"
    words = END_REASONS.get(state, "it ended ({state})").format(
        by=by,
        state=state or "state unknown",
        exit_code=exit_code.split(":")[0] or "?",
        limit=f" ({record['Timelimit']})" if record.get("Timelimit") else "",
        node=f" {record['NodeList']}" if record.get("NodeList") not in (None, "", "None assigned") else "",
    )
    when = record.get("End", "")
    when = f" at {when.replace('T', ' ')}" if when and when not in ("Unknown", "None") else ""
    session = f"({'course ' + course + ', ' if course else ''}Slurm job {job_id})"
    if starting:
        message = (
            f"Your session {session} ended before its server answered{when}: {words}. "
            f"({slurm_says}.) The job's output is in {output.replace('%j', job_id)}."
        )
    else:
        message = (
            f"Your previous session {session} ended{when}: {words}. ({slurm_says}.) You can start a new one."
        )
    return {
        "job_id": job_id,
        "course": course,
        "state": state_words,
        "exit_code": exit_code,
        "reason": reason,
        "end": record.get("End", ""),
        "message": message,
    }
