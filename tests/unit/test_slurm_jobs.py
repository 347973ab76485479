"""What Slurm's commands answer (spawners/slurm/client.py) and what learners read of it
(spawners/slurm/words.py): pure functions, no cluster."""

import datetime as dt

import pytest

from spawners.slurm.client import (
    CommandResult,
    JobStatus,
    QueuePlace,
    job_status,
    queue_place,
    sacct_record,
    scontrol_record,
    state_kind,
    submitted_job_id,
)
from spawners.slurm.words import end_of_job, format_resource, ordinal, pending_message


def squeue(stdout="", returncode=0, stderr=""):
    return CommandResult(["squeue"], returncode, stdout, stderr)


@pytest.mark.parametrize(
    "state, kind",
    [
        ("PENDING", "pending"),
        ("RUNNING", "running"),
        ("COMPLETING", "ending"),
        ("TIMEOUT", "ended"),
        ("CANCELLED by 1001", "ended"),
        ("WEIRD", "unknown"),
        ("", "unknown"),
    ],
)
def test_states_by_what_they_mean_for_a_server(state, kind):
    assert state_kind(state) == kind


def test_squeue_answers_and_non_answers():
    assert job_status(squeue("42|RUNNING|node1|cpu|None\n"), "42") == JobStatus(
        "running", "RUNNING", "node1", "cpu", "None"
    )
    assert job_status(squeue("42|PENDING|(null)|cpu|Priority\n"), "42").node == ""
    # only an answer counts: a failing or timed-out squeue is unknown, never "ended"
    timed_out = squeue(returncode=1, stderr="slurm_load_jobs error: Socket timed out")
    assert job_status(timed_out, "42").kind == "unknown"
    assert job_status(squeue(returncode=None), "42").kind == "unknown"
    assert job_status(squeue("garbage"), "42").kind == "unknown"
    # squeue no longer knowing the job is an answer
    purged = squeue(returncode=1, stderr="slurm_load_jobs error: Invalid job id specified")
    assert job_status(purged, "42").kind == "ended"
    assert job_status(squeue(""), "42").kind == "ended"


def test_queue_place_sacct_scontrol_and_sbatch():
    rows = "40|2026-12-02T10:00:00|Priority\n42|N/A|Resources\n43|N/A|Priority\n"
    assert queue_place(rows, "42", "cpu") == QueuePlace(2, 3, "", "Resources", "cpu")
    assert queue_place(rows, "99", "cpu") is None
    sacct = "42|TIMEOUT|0:0|None|2026-12-02T10:00:00|01:00:00|01:00:00|node1\n42.batch|CANCELLED|0:15|||||\n"
    assert sacct_record(sacct, "42")["State"] == "TIMEOUT" and sacct_record(sacct, "7") == {}
    shown = "JobId=42 JobName=ailys-algo JobState=FAILED Reason=NonZeroExitCode ExitCode=1:0 NodeList=n1"
    assert scontrol_record(shown, "42")["ExitCode"] == "1:0" and scontrol_record(shown, "43") == {}
    assert submitted_job_id("42\n") == "42" and submitted_job_id("42;mesolys\n") == "42"
    assert submitted_job_id("sbatch: error: nope") == ""


def test_resources_in_the_units_learners_type_on_the_form():
    assert format_resource("memory", 2 * 1024**3) == "2G" and format_resource("walltime", 5400) == "1h30m"
    assert format_resource("cpus", 1) == "1 CPU core" and format_resource("gpus", 2) == "2 GPUs"
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 21, 112)] == [
        "1st",
        "2nd",
        "3rd",
        "4th",
        "11th",
        "12th",
        "21st",
        "112th",
    ]


def test_why_a_job_is_pending():
    status = JobStatus("pending", "PENDING", "", "gpu", "Resources")
    assert pending_message("42", status, None) == (
        "Job 42 is waiting in the queue in partition gpu; "
        "reason: Resources (the resources it needs are in use)."
    )
    place = QueuePlace(2, 5, "2026-12-02T10:30:00", "Priority", "gpu")
    assert pending_message("42", status, place, now=dt.datetime(2026, 12, 2, 10, 0)) == (
        "Job 42 is 2nd of 5 pending in partition gpu; Slurm's estimated start: 10:30 (in about 30 min); "
        "reason: Priority (jobs ahead of it have a higher priority)."
    )


def test_why_a_job_ended():
    record = {
        "State": "CANCELLED by 1001",
        "ExitCode": "0:15",
        "Reason": "None",
        "End": "2026-12-02T10:00:00",
        "Timelimit": "01:00:00",
        "NodeList": "node1",
    }
    end = end_of_job(
        "42",
        record,
        "sacct",
        None,
        course="algo",
        starting=False,
        output="~/x-%j.log",
        name_of_uid=lambda uid: {"1001": "prof"}[uid],
    )
    assert end["message"] == (
        "Your previous session (course algo, Slurm job 42) ended at 2026-12-02 10:00:00: it was cancelled by "
        "prof. (sacct: State=CANCELLED by 1001, ExitCode=0:15, Reason=None.) You can start a new one."
    )
    timeout = end_of_job(
        "42", {**record, "State": "TIMEOUT"}, "sacct", None, course="algo", starting=True, output="~/x-%j.log"
    )
    assert "ended before its server answered" in timeout["message"]
    assert "it reached its time limit (01:00:00)" in timeout["message"] and "~/x-42.log" in timeout["message"]
    gone = end_of_job(
        "42",
        {},
        "scontrol",
        JobStatus("ended", detail="no longer in squeue"),
        course="",
        starting=False,
        output="",
    )
    said = "(Slurm job 42) ended: it ended (state unknown). (no record of its end; squeue said no longer"
    assert said in gone["message"]
