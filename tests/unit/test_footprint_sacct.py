"""sacct's output as job records (footprint/sacct.py) and as footprint records (footprint/collect.py),
on lines recorded from the test cluster and hand-written ones with energy and GPUs."""

import datetime as dt
from pathlib import Path

import pytest

from footprint.collect import footprint_of_job, footprints_of
from footprint.sacct import FIELDS, parse, parse_total_cpu, parse_tres, sacct_argv
from hub_config.schema.energy import Energy

DATA = Path(__file__).parent.parent / "data" / "sacct"


@pytest.fixture(scope="module")
def recorded():
    return parse((DATA / "test-cluster.txt").read_text())


@pytest.fixture(scope="module")
def measured():
    return {j.job_id: j for j in parse((DATA / "hand-written-energy.txt").read_text())}


def one(jobs, job_id, state=None):
    (job,) = [j for j in jobs if j.job_id == job_id and (state is None or j.state == state)]
    return job


def test_a_completed_job_has_its_cores_memory_usage_and_no_measured_energy(recorded):
    job = one(recorded, "1")
    assert (job.user, job.partition, job.state, job.cores, job.memory_bytes, job.gpus) == (
        "nrg-rec",
        "cpu",
        "COMPLETED",
        1,
        512 * 1024**2,
        0,
    )
    assert job.elapsed_s == 4 and job.total_cpu_s == pytest.approx(1.011)
    assert job.core_usage == pytest.approx(1.011 / 4)
    assert job.steps == ("batch",) and not job.measured
    assert job.start == dt.datetime(2026, 12, 2, 16, 47, 36).astimezone()
    assert (job.kind, job.course) == ("slurm", "nrg-intro")


def test_steps_are_folded_into_their_allocation(recorded):
    job = one(recorded, "4")  # the busy loop ran in srun step 4.0
    assert job.steps == ("batch", "0")
    assert job.total_cpu_s == pytest.approx(1.048)  # the allocation's TotalCPU sums its steps
    assert job.cores == 2


def test_gpus_come_from_alloc_tres(recorded, measured):
    assert one(recorded, "3").gpus == 1 and one(recorded, "3").partition == "gpu"
    assert measured["101"].gpus == 2  # gres/gpu:v100=2 and gres/gpu=2: counted once


def test_cancelled_failed_and_over_time_jobs_are_ended(recorded):
    assert one(recorded, "6").state == "CANCELLED"  # "CANCELLED by 0"
    assert one(recorded, "5").state == "FAILED"
    timeout = one(recorded, "7")
    assert (timeout.state, timeout.elapsed_s) == ("TIMEOUT", 67)  # 1 min limit, then KillWait
    assert all(j.ended for j in recorded)


def test_each_attempt_of_a_requeued_job_is_a_record_of_its_own(recorded):
    first, last = one(recorded, "8", "REQUEUED"), one(recorded, "8", "COMPLETED")
    assert first.record_id == f"8@{first.start.astimezone(dt.UTC):%Y-%m-%dT%H:%M:%SZ}"
    assert last.record_id == "8"
    assert first.total_cpu_s == pytest.approx(1.044) and last.total_cpu_s == pytest.approx(3.991)
    assert first.steps == ("batch",) and last.steps == ("batch",)  # each attempt's own step
    assert last.core_usage == pytest.approx(3.991 / 4)


def test_array_tasks_are_autograde_records_one_per_task(recorded):
    tasks = [j for j in recorded if j.array_job == "9"]
    assert sorted(j.record_id for j in tasks if j.state != "REQUEUED") == ["9_0", "9_1", "9_2"]
    assert {j.kind for j in tasks} == {"autograde"} and {j.course for j in tasks} == {None}
    assert one(recorded, "9_2").raw_id == "9"  # the task's own id, not the array's
    records = footprints_of(tasks, Energy())
    assert len(records) == 4 and len({r.ref for r in records}) == 4  # 9_0 twice: requeued


def test_consumed_energy_makes_a_measured_figure(measured):
    job = measured["101"]
    assert job.consumed_energy_j == 2_880_000  # the largest of allocation, .batch and .extern
    record = footprint_of_job(job, Energy())
    assert record.method == "measured"
    assert record.energy_wh == pytest.approx(2_880_000 / 3600 * 1.56)
    assert record.co2_g == pytest.approx(record.energy_wh * 51.28 / 1000)
    assert record.gpu_hours == pytest.approx(4.0) and record.core_hours == pytest.approx(16.0)
    assert record.memory_gb_hours == pytest.approx(64.0)
    assert (record.kind, record.course, record.who) == ("slurm", "deep-learning", "nrg-ana")


def test_energy_measured_only_on_steps_ignores_slurms_no_value(measured):
    job = measured["102"]
    assert job.consumed_energy_j == 270_750
    assert (job.state, job.total_cpu_s) == ("TIMEOUT", 6000)


def test_a_job_cancelled_before_it_started_gives_no_record(measured):
    job = measured["103"]
    assert (job.started, job.state, job.cores) == (False, "CANCELLED", 1)
    assert [r.ref for r in footprints_of(list(measured.values()), Energy())] == ["101", "102"]


def test_without_consumed_energy_the_estimate_is_the_models_arithmetic(recorded):
    job = one(recorded, "3")  # gpu partition: 2 cores, 1 GPU, 1G, 4 s
    record = footprint_of_job(job, Energy())
    usage = 1.055 / (4 * 2)
    watts = 2 * 7.5 * usage + 1 * 300 + 1 * 0.3725
    assert record.method == "estimate"
    assert record.energy_wh == pytest.approx(4 / 3600 * watts * 1.56)
    assert record.energy_wh_low == pytest.approx(4 / 3600 * (2 * 7.5 * usage + 0.08) * 1.09)
    assert record.core_usage == pytest.approx(usage)


def test_jobs_not_started_by_the_hub_are_left_out():
    line = "77|77|bob|ailys|cpu|COMPLETED|2026-12-02T16:47:35|2026-12-02T16:47:36|2026-12-02T16:47:40|4|00:01.011|1|cpu=1,mem=1G||node1|my|job"
    (job,) = parse(line)
    assert job.job_name == "my|job"  # the last field: a | of the user's does not shift the others
    assert footprints_of([job], Energy()) == []


def test_field_parsers():
    assert parse_total_cpu("00:01.011") == pytest.approx(1.011)
    assert parse_total_cpu("12:34:56") == 12 * 3600 + 34 * 60 + 56
    assert parse_total_cpu("1-02:03:04") == 86400 + 2 * 3600 + 3 * 60 + 4
    assert parse_tres("billing=2,cpu=2,gres/gpu=1,mem=1.5G,node=1") == {
        "billing": 2,
        "cpu": 2,
        "gres/gpu": 1,
        "mem": 1.5 * 1024**3,
        "node": 1,
    }
    with pytest.raises(ValueError, match="fields"):
        parse("1|2|3")
    argv = sacct_argv(dt.datetime(2026, 1, 1, tzinfo=dt.UTC))
    assert "--duplicates" in argv and f"--format={','.join(FIELDS)}" in argv


def test_sstat_and_squeue_lines_give_a_running_sessions_job_and_cpu_time():
    """Lines as the test cluster's sstat and squeue print them (footprint/sstat.py)."""
    from footprint.sstat import SUDOERS_ARGS, parse_squeue, parse_sstat_cpu, session_job, sstat_argv

    line = "cpu=00:01:04,energy=0,fs/disk=1689981,mem=15000K,pages=2,vmem=19156K\n"
    assert parse_sstat_cpu(line) == 64.0
    assert parse_sstat_cpu("cpu=1-02:03:04.500,mem=1G") == 93784.5
    assert parse_sstat_cpu("") is None  # the step has not started, or has just ended
    assert sstat_argv("42") == [
        "sstat", "--noheader", "--parsable2", "--format", "TRESUsageInTot", "--jobs", "42.batch"
    ]  # fmt: skip
    assert SUDOERS_ARGS == "^--noheader --parsable2 --format TRESUsageInTot --jobs [0-9]+[.]batch$"
    for bad in ("42_1", "42.0", "42;id", ""):
        with pytest.raises(ValueError, match="not a session's job id"):
            sstat_argv(bad)
    jobs = parse_squeue(
        "7|ana|ailys-ml|2026-12-03T08:45:28\n"
        "8|ana|ailys-grade-ml/tp1|2026-12-03T08:46:00\n"
        "9|ben|ailys-ml|2026-12-03T08:47:00\n"
        "10|ana|ailys-stats|2026-12-03T08:48:00\n"
        "garbage line\n"
    )
    assert [j.job_id for j in jobs] == ["7", "8", "9", "10"]
    since = jobs[0].start.timestamp() - 5  # the server's start, just before its job's
    assert session_job(jobs, "ana", "ml", since).job_id == "7"
    assert session_job(jobs, "ana", "stats", since).job_id == "10"
    assert session_job(jobs, "ana", None, since).job_id == "10"  # no course: the latest, never grading's
    assert session_job(jobs, "ana", "ml", since + 3600) is None  # an older job is another session's
    assert session_job(jobs, "cleo", "ml", since) is None


def test_the_slurm_commands_get_no_token_of_the_service(monkeypatch):
    from footprint.collect import sacct_env

    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "secret-of-the-service")
    env = sacct_env("/etc/slurm-test/slurm.conf")
    assert env["SLURM_CONF"] == "/etc/slurm-test/slurm.conf" and env["PATH"]
    assert "secret-of-the-service" not in env.values()
