"""Slurm accounting as typed job records: the lines of ``sacct --parsable2 --noheader
--format=<FIELDS>`` (see ``sacct_argv``), one record per allocation, its steps folded in.

Pure: text in, records out. What the lines hold, as Slurm 22.05 prints them (tests/data/sacct/):

- an allocation line (JobID ``123``, or ``123_4`` for task 4 of array 123, whose JobIDRaw is the
  task's own id), then its steps (``123.batch``, ``123.extern``, ``123.0``); TotalCPU of the
  allocation line is the sum of its steps'; its AllocTRES holds cpu=, mem=, gres/gpu=;
- with ``--duplicates``, a requeued job's earlier attempts, each State REQUEUED with its own
  Start, End and TotalCPU, then the last attempt under the same JobID;
- State ``CANCELLED by <uid>``; TIMEOUT for a job that ran over; Start ``None`` or ``Unknown`` for
  a job that never started;
- ConsumedEnergyRaw in joules when an acct_gather_energy plugin (RAPL, IPMI) measures the nodes,
  empty or 0 when none does.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field

# JobName last: the one field a user chooses, so a "|" in it cannot shift the others.
FIELDS = (
    "JobID",
    "JobIDRaw",
    "User",
    "Account",
    "Partition",
    "State",
    "Submit",
    "Start",
    "End",
    "ElapsedRaw",
    "TotalCPU",
    "NCPUS",
    "AllocTRES",
    "ConsumedEnergyRaw",
    "NodeList",
    "JobName",
)
ENDED = {
    "COMPLETED",
    "FAILED",
    "CANCELLED",
    "TIMEOUT",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "BOOT_FAIL",
    "DEADLINE",
    "REQUEUED",
}
# Slurm's NO_VAL64 and friends: "no figure", printed as huge numbers by some plugins.
_NO_VALUE = 2**63
_UNITS = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4, "P": 1024**5}
_TOTAL_CPU = re.compile(r"^(?:(?:(\d+)-)?(\d+):)?(\d+):(\d+(?:\.\d+)?)$")
# Our jobs' names: spawners/slurm (ailys-<course>) and grading/autograde/slurm.py (ailys-grade,
# ailys-grade-<course>, or ailys-grade-<course>/<assignment>: a slug holds no "/").
_OUR_JOB = re.compile(r"^ailys-(?:(grade)(?:-([^/]+)(?:/(.+))?)?|(.+))$")


def sacct_argv(since: dt.datetime, until: dt.datetime | None = None) -> list[str]:
    """The sacct command whose output ``parse`` reads: every user's jobs and earlier attempts."""
    argv = [
        "sacct",
        "--allusers",
        "--duplicates",
        "--parsable2",
        "--noheader",
        f"--format={','.join(FIELDS)}",
        f"--starttime={_slurm_time(since)}",
    ]
    return argv + ([f"--endtime={_slurm_time(until)}"] if until else [])


def _slurm_time(moment: dt.datetime) -> str:
    return moment.astimezone().strftime("%Y-%m-%dT%H:%M:%S")  # sacct reads the local time


@dataclass(frozen=True)
class SlurmJob:
    """One attempt of a job (or of an array task) as the accounting holds it."""

    job_id: str  # 123, 123_4
    raw_id: str
    user: str
    account: str
    partition: str
    state: str  # first word: CANCELLED, not "CANCELLED by 0"
    submit: dt.datetime | None
    start: dt.datetime | None
    end: dt.datetime | None
    elapsed_s: int
    total_cpu_s: float
    cores: int
    memory_bytes: int
    gpus: int
    job_name: str
    nodes: str
    # Joules measured by an acct_gather_energy plugin; None where nothing measured.
    consumed_energy_j: int | None = None
    steps: tuple[str, ...] = field(default=())

    @property
    def started(self) -> bool:
        return self.start is not None

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    @property
    def measured(self) -> bool:
        return self.consumed_energy_j is not None

    @property
    def core_usage(self) -> float:
        """TotalCPU / (Elapsed × cores), clamped to 0..1."""
        from .model import core_usage

        return core_usage(self.total_cpu_s, self.elapsed_s, self.cores)

    @property
    def record_id(self) -> str:
        """Stable across re-reads: the job id, and for an earlier attempt of a requeued job its start."""
        if self.state == "REQUEUED" and self.start:
            return f"{self.job_id}@{self.start.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
        return self.job_id

    @property
    def array_job(self) -> str | None:
        """The array's id for a task (123 for 123_4), else None."""
        return self.job_id.split("_", 1)[0] if "_" in self.job_id else None

    @property
    def ours(self) -> bool:
        return _OUR_JOB.match(self.job_name) is not None

    @property
    def kind(self) -> str:
        """autograde for a grading array's task, slurm for a learner's session (or anything else)."""
        match = _OUR_JOB.match(self.job_name)
        return "autograde" if match and match.group(1) else "slurm"

    @property
    def course(self) -> str | None:
        match = _OUR_JOB.match(self.job_name)
        return (match.group(2) or match.group(4)) if match else None

    @property
    def assignment(self) -> str | None:
        """The assignment an autograde task graded (its job name's part after the course)."""
        match = _OUR_JOB.match(self.job_name)
        return match.group(3) if match else None


def parse(text: str) -> list[SlurmJob]:
    """Every allocation of sacct's output, in order, with its steps' energy folded in."""
    jobs: list[SlurmJob] = []
    fields: list[dict[str, str]] = []  # the allocation lines, then the steps' energies
    energies: list[list[int]] = []
    steps: list[list[str]] = []
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        values = line.split("|", len(FIELDS) - 1)
        if len(values) != len(FIELDS):
            raise ValueError(f"sacct line with {len(values)} fields, not {len(FIELDS)}: {line!r}")
        record = dict(zip(FIELDS, values, strict=True))
        job_id, _, step = record["JobID"].partition(".")
        if not step:
            fields.append(record)
            energies.append([])
            steps.append([])
            continue
        # A step belongs to the last allocation line of its job (a requeued job's attempts share an id).
        owner = next((i for i in range(len(fields) - 1, -1, -1) if fields[i]["JobID"] == job_id), None)
        if owner is None:
            continue  # its allocation is outside the window read
        steps[owner].append(step)
        joules = _joules(record["ConsumedEnergyRaw"])
        if joules is not None:
            energies[owner].append(joules)
    for record, step_joules, step_names in zip(fields, energies, steps, strict=True):
        jobs.append(_job(record, step_joules, tuple(step_names)))
    return jobs


def _job(record: dict[str, str], step_joules: list[int], steps: tuple[str, ...]) -> SlurmJob:
    tres = parse_tres(record["AllocTRES"])
    own = _joules(record["ConsumedEnergyRaw"])
    # The allocation, .batch and .extern steps each span the whole job and measure the same nodes:
    # their largest figure is the job's (a sum would count the job twice or more).
    joules = max([j for j in [own, *step_joules] if j is not None], default=None)
    return SlurmJob(
        job_id=record["JobID"],
        raw_id=record["JobIDRaw"],
        user=record["User"],
        account=record["Account"],
        partition=record["Partition"],
        state=record["State"].split(" ", 1)[0],
        submit=parse_time(record["Submit"]),
        start=parse_time(record["Start"]),
        end=parse_time(record["End"]),
        elapsed_s=int(record["ElapsedRaw"] or 0),
        total_cpu_s=parse_total_cpu(record["TotalCPU"]),
        cores=int(tres.get("cpu", record["NCPUS"] or 0)),
        memory_bytes=int(tres.get("mem", 0)),
        gpus=int(tres.get("gres/gpu", 0)),
        job_name=record["JobName"],
        nodes=record["NodeList"],
        consumed_energy_j=joules if joules else None,
        steps=steps,
    )


def _joules(text: str) -> int | None:
    """ConsumedEnergyRaw: joules, or None when empty, zero (nothing measures) or Slurm's no-value."""
    if not text.strip():
        return None
    value = int(float(text))
    return value if 0 < value < _NO_VALUE else None


def parse_time(text: str) -> dt.datetime | None:
    """sacct's local time (2026-12-02T16:47:36) as an aware datetime; None, Unknown: None."""
    if text in ("", "None", "Unknown"):
        return None
    return dt.datetime.fromisoformat(text).astimezone()  # naive: this host's zone, as sacct prints


def parse_total_cpu(text: str) -> float:
    """TotalCPU ([DD-[HH:]]MM:SS[.mmm]: 00:01.011, 12:34:56, 1-02:03:04) in seconds."""
    if not text:
        return 0.0
    match = _TOTAL_CPU.match(text)
    if not match:
        raise ValueError(f"not a TotalCPU: {text!r}")
    days, hours, minutes, seconds = match.groups()
    return int(days or 0) * 86400 + int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)


def parse_tres(text: str) -> dict[str, float]:
    """AllocTRES (billing=2,cpu=2,gres/gpu=1,mem=1G,node=1) as numbers; mem in bytes. A typed GPU
    (gres/gpu:v100=1) is also counted in the untyped gres/gpu entry, which alone is kept."""
    tres: dict[str, float] = {}
    for item in filter(None, text.split(",")):
        name, _, value = item.partition("=")
        if ":" in name:
            continue
        unit = value[-1:].upper()
        if unit in _UNITS:  # mem=512M, fs/disk=10G: in bytes
            tres[name] = float(value[:-1]) * _UNITS[unit]
        elif name == "mem":  # a bare number is in MB, as Slurm reads it
            tres[name] = float(value) * 1024**2
        else:
            tres[name] = float(value)
    return tres
