"""The Slurm client: every Slurm command the spawner runs (sbatch, squeue, scancel, sacct, scontrol),
through one command runner with its timeouts, and the parsing of what each answers.

Commands run as the learner (``exec_prefix``, e.g. ``sudo -n -u {username} --``; empty: the hub is
root and submits with ``--uid``/``--gid``), never through a shell. A command that fails, times out or
answers something unexpected is *unknown*, never taken for an answer: only squeue saying a job has
ended, or no longer knowing it, ends a learner's server (batchspawner #171, #174, #315).
"""

from __future__ import annotations

import asyncio
import logging
import os
import pwd
import re
import shlex
from dataclasses import dataclass
from pathlib import Path

from .errors import SlurmSpawnError

# Slurm job states (squeue's %T, sacct's State), by what they mean for a learner's server.
PENDING_STATES = {"PENDING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD"}
RUNNING_STATES = {"RUNNING", "SUSPENDED", "SIGNALING", "STAGE_OUT", "RESIZING", "STOPPED"}
# The server is gone or going: the job is being cleaned up, or has ended.
ENDING_STATES = {"COMPLETING"}
ENDED_STATES = {
    "BOOT_FAIL",
    "CANCELLED",
    "COMPLETED",
    "DEADLINE",
    "FAILED",
    "NODE_FAIL",
    "OUT_OF_MEMORY",
    "PREEMPTED",
    "REVOKED",
    "SPECIAL_EXIT",
    "TIMEOUT",
}
# What squeue prints about a job id it no longer knows (purged after MinJobAge): an answer, not a failure.
UNKNOWN_JOB = "Invalid job id specified"
SACCT_FIELDS = ["JobID", "State", "ExitCode", "Reason", "End", "Elapsed", "Timelimit", "NodeList"]


@dataclass
class CommandResult:
    argv: list[str]
    returncode: int | None  # None: did not run to its end (timeout, could not start)
    stdout: str = ""
    stderr: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def describe(self) -> str:
        status = "timed out" if self.returncode is None else f"exit {self.returncode}"
        said = self.stderr.strip() or self.stdout.strip() or "(no output)"
        return f"{shlex.join(self.argv)}: {status}: {said}"


@dataclass
class JobStatus:
    """What squeue says about a job. ``kind``: pending, running, ending, ended, or unknown when
    squeue gave no clear answer (failed, timed out): then nothing may be concluded."""

    kind: str
    state: str = ""
    node: str = ""
    partition: str = ""
    reason: str = ""
    detail: str = ""  # the failure, for unknown


@dataclass
class QueuePlace:
    position: int
    pending: int
    start: str  # Slurm's estimated start (ISO local time) or ""
    reason: str
    partition: str


# --- what the commands answer (pure) ----------------------------------------------------------------


def state_kind(state: str) -> str:
    """pending, running, ending, ended or unknown, from a Slurm state (its first word)."""
    state = state.split()[0] if state else ""
    for kind, states in (
        ("pending", PENDING_STATES),
        ("running", RUNNING_STATES),
        ("ending", ENDING_STATES),
        ("ended", ENDED_STATES),
    ):
        if state in states:
            return kind
    return "unknown"


def has_ended(record: dict[str, str]) -> bool:
    """Whether a sacct or scontrol record says the job has ended."""
    return record.get("State", "").split(" ")[0] in ENDED_STATES


def job_status(result: CommandResult, job_id: str) -> JobStatus:
    """The job's status from ``squeue --format=%i|%T|%B|%P|%r`` (see SlurmClient.query_job)."""
    if not result.ok:
        if result.returncode is not None and UNKNOWN_JOB in result.stderr:
            return JobStatus("ended", detail="no longer known to Slurm")
        return JobStatus("unknown", detail=result.describe())
    for line in result.stdout.splitlines():
        fields = line.strip().split("|")
        if len(fields) == 5 and fields[0] == job_id:
            _, state, node, partition, reason = fields
            state = state.split()[0] if state else ""
            kind = state_kind(state)
            node = "" if node in ("", "(null)", "n/a", "None") else node
            return JobStatus(kind, state, node, partition, reason, detail="" if kind != "unknown" else line)
    if result.stdout.strip() and not result.stdout.strip().startswith(job_id):
        return JobStatus("unknown", detail=f"unexpected squeue output: {result.stdout.strip()[:200]}")
    return JobStatus("ended", detail="no longer in squeue")


def queue_place(stdout: str, job_id: str, partition: str) -> QueuePlace | None:
    """The job's place in ``squeue --states=PENDING --start --sort=-p,i --format=%i|%S|%r``."""
    rows = [line.strip().split("|") for line in stdout.splitlines() if line.count("|") == 2]
    for position, (jid, start, reason) in enumerate(rows, 1):
        if jid == job_id:
            start = "" if start in ("N/A", "", "Unknown") else start
            return QueuePlace(position, len(rows), start, reason, partition)
    return None


def sacct_record(stdout: str, job_id: str) -> dict[str, str]:
    """The job's line of ``sacct --parsable2 --format=<SACCT_FIELDS>``, by field name."""
    for line in stdout.splitlines():
        values = line.split("|")
        if len(values) == len(SACCT_FIELDS) and values[0] == job_id:
            return dict(zip(SACCT_FIELDS, values, strict=False))
    return {}


def scontrol_record(stdout: str, job_id: str) -> dict[str, str]:
    """``scontrol --oneliner show job`` in sacct's field names."""
    info = dict(re.findall(r"(\S+?)=(\S*)", stdout))
    if info.get("JobId") != job_id:
        return {}
    return {
        "JobID": job_id,
        "State": info.get("JobState", ""),
        "ExitCode": info.get("ExitCode", ""),
        "Reason": info.get("Reason", ""),
        "End": info.get("EndTime", ""),
        "Timelimit": info.get("TimeLimit", ""),
        "NodeList": info.get("NodeList", ""),
    }


def submitted_job_id(stdout: str) -> str:
    """The job id of ``sbatch --parsable``'s answer ("<id>" or "<id>;<cluster>"), or ""."""
    out = stdout.strip()
    job_id = out.splitlines()[-1].split(";")[0] if out else ""
    return job_id if re.fullmatch(r"\d+", job_id) else ""


# --- running them --------------------------------------------------------------------------------


class SlurmClient:
    """Slurm's commands for one learner, with the spawner's settings (see SlurmSpawner's traits)."""

    def __init__(
        self,
        *,
        username: str,
        exec_prefix: str,
        env: dict[str, str],
        timeout: float,
        log: logging.Logger | logging.LoggerAdapter,
    ):
        self.username = username
        self.exec_prefix = exec_prefix
        self.env = env
        self.timeout = timeout
        self.log = log

    def as_learner(self, argv: list[str]) -> list[str]:
        if self.exec_prefix:
            return [*shlex.split(self.exec_prefix.format(username=self.username)), *argv]
        return argv

    async def run(
        self, argv: list[str], input: str | None = None, timeout: float | None = None
    ) -> CommandResult:
        """Run a Slurm command as the learner (exec_prefix), never through a shell."""
        timeout = timeout or self.timeout
        argv = self.as_learner(argv)
        try:
            proc = await asyncio.create_subprocess_exec(
                *argv,
                env=self.env,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as error:
            return CommandResult(argv, None, "", str(error))
        try:
            out, err = await asyncio.wait_for(
                proc.communicate(input.encode() if input is not None else None), timeout
            )
        except (TimeoutError, asyncio.CancelledError) as error:
            proc.kill()
            await proc.wait()
            if isinstance(error, asyncio.CancelledError):
                raise
            return CommandResult(argv, None, "", f"no answer within {timeout:g} s")
        return CommandResult(
            argv, proc.returncode, out.decode(errors="replace"), err.decode(errors="replace")
        )

    async def query_job(self, job_id: str) -> JobStatus:
        """squeue's answer about the job. Only an answer counts: a failed or slow squeue is unknown."""
        argv = ["squeue", "--noheader", f"--jobs={job_id}", "--states=all", "--format=%i|%T|%B|%P|%r"]
        return job_status(await self.run(argv), job_id)

    async def queue_place(self, job_id: str, partition: str) -> QueuePlace | None:
        """The job's place among the pending jobs of its partition (priority order), Slurm's
        estimated start and its pending reason; None when squeue does not answer or the job runs."""
        result = await self.run(
            [
                "squeue",
                "--noheader",
                f"--partition={partition}",
                "--states=PENDING",
                "--start",
                "--sort=-p,i",
                "--format=%i|%S|%r",
            ]
        )
        return queue_place(result.stdout, job_id, partition) if result.ok else None

    async def job_record(self, job_id: str) -> dict[str, str]:
        """sacct's record of a job: State, ExitCode, Reason, End, Elapsed, Timelimit, NodeList."""
        result = await self.run(
            [
                "sacct",
                "--noheader",
                "--parsable2",
                "--allocations",
                f"--jobs={job_id}",
                f"--format={','.join(SACCT_FIELDS)}",
            ]
        )
        return sacct_record(result.stdout, job_id) if result.ok else {}

    async def job_details(self, job_id: str) -> dict[str, str]:
        """scontrol's view of a job slurmctld still holds, in sacct's field names."""
        result = await self.run(["scontrol", "--oneliner", "show", "job", job_id])
        return scontrol_record(result.stdout, job_id) if result.ok else {}

    async def cancel(self, job_id: str, retry_for: float = 0.0) -> bool:
        """scancel the job as its learner; True once Slurm has it cancelled (or it had ended)."""
        argv = ["scancel", job_id] if self.exec_prefix else ["scancel", f"--user={self.username}", job_id]
        deadline = asyncio.get_running_loop().time() + retry_for
        while True:
            result = await self.run(argv)
            done = UNKNOWN_JOB in result.stderr or "already completing or completed" in result.stderr
            if result.ok or (result.returncode is not None and done):
                return True
            if asyncio.get_running_loop().time() >= deadline:
                self.log.error(
                    "Could not cancel Slurm job %s of %s: %s", job_id, self.username, result.describe()
                )
                return False
            self.log.warning("scancel of job %s failed, retrying: %s", job_id, result.describe())
            await asyncio.sleep(2)

    async def submit(self, script: str, account: pwd.struct_passwd) -> str:
        """sbatch the script as the learner; the job id, or a SlurmSpawnError in Slurm's words."""
        argv = ["sbatch", "--parsable"]
        if not self.exec_prefix:
            if os.geteuid() != 0:
                raise SlurmSpawnError(
                    "Not started: the hub is not root and SlurmSpawner.exec_prefix is empty, so it cannot "
                    "submit as the learner. Set exec_prefix (see spawners/slurm/__init__.py).",
                    reason="config",
                    status_code=500,
                )
            argv += [f"--uid={account.pw_uid}", f"--gid={account.pw_gid}"]
        # sbatch gets longer than the queries: killed after sending its request, it could leave a job
        # the hub never learns of. It gives up by itself when slurmctld does not answer (~16 s).
        result = await self.run(argv, input=script, timeout=max(self.timeout, 120))
        job_id = submitted_job_id(result.stdout) if result.ok else ""
        if job_id:
            return job_id
        lines = [line.strip().removeprefix("sbatch: error: ") for line in result.stderr.splitlines()]
        error = "; ".join(line for line in lines if line) or result.describe()
        self.log.error("sbatch for %s failed: %s", self.username, result.describe())
        # The prefix itself said no (sudo: the learner is not in the rule's group): not Slurm.
        prefix = Path(shlex.split(self.exec_prefix)[0]).name if self.exec_prefix else ""
        if prefix and result.stderr.startswith(f"{prefix}: "):
            said = result.stderr.splitlines()[0].removeprefix(f"{prefix}: ").strip()
            raise SlurmSpawnError(
                f"Not started: the hub may not run Slurm commands as {self.username} ({prefix} said: "
                f"{said}). Ask the site's administrators.",
                reason="exec-prefix",
                status_code=500,
            )
        raise SlurmSpawnError(
            f"Not started: Slurm refused the job: {error}",
            reason="slurm-submit",
            status_code=503 if result.returncode is None else 400,
        )
