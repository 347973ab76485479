"""The Slurm test cluster itself: jobs run as a learner, on each partition, with the resources asked
for; squeue, scontrol and sacct report them; the second partition's limits refuse a request; and
nothing is left running when the cluster stops. Later tests (the Slurm spawner) rely on all this."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import psutil
import pytest

from tests.services import remove_unix_user, unix_user
from tests.services.slurm import SlurmCluster, cluster_for_tests, need_cluster

pytestmark = pytest.mark.slurm

FINISHED = {"COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "BOOT_FAIL"}
REPORT = (
    "echo uid=$(id -u) user=$(id -un) node=$SLURMD_NODENAME partition=$SLURM_JOB_PARTITION"
    " gpus=$CUDA_VISIBLE_DEVICES"
)


@pytest.fixture(scope="module")
def cluster(request):
    yield from cluster_for_tests(request)


def new_account(cluster: SlurmCluster, register: bool = True):
    name = f"slurmt{secrets.token_hex(3)}"
    user = unix_user(name, cluster.root / "home")
    if register:
        cluster.add_user(name)
    return user


@pytest.fixture(scope="module")
def learner(cluster):
    user = new_account(cluster)
    yield user
    remove_unix_user(user)


def report(path: Path) -> dict[str, str]:
    return dict(field.split("=", 1) for field in path.read_text().split())


@pytest.mark.parametrize(
    "partition, request_args",
    [("cpu", ["-c", "2", "--mem=512M"]), ("gpu", ["-c", "2", "--mem=1G", "--gres=gpu:1"])],
)
def test_a_learners_job_runs_as_the_learner_on_each_partition(cluster, learner, partition, request_args):
    home = Path(learner.pw_dir)
    job = cluster.sbatch(
        "-p",
        partition,
        *request_args,
        "-D",
        str(home),
        "-o",
        f"{home}/job-%j.out",
        "--wrap",
        REPORT,
        user=learner.pw_name,
    )
    info = cluster.wait_job(job, FINISHED)
    assert info["JobState"] == "COMPLETED", info
    out = report(home / f"job-{job}.out")
    assert out["uid"] == str(learner.pw_uid) and out["user"] == learner.pw_name
    assert out["partition"] == partition
    assert out["node"] in cluster.partitions[partition].nodes
    assert out["node"] in cluster.node_addresses  # the node's name maps to a 127.0.0.x address
    if partition == "gpu":
        assert out["gpus"] == "0"  # one of the node's two GPUs was allocated
    (home / f"job-{job}.out").unlink()


def test_root_submits_for_the_learner_with_uid_and_gid(cluster, learner):
    """What a root hub does without sudo: sbatch --uid/--gid (the job's environment is root's)."""
    home = Path(learner.pw_dir)
    job = cluster.sbatch(
        f"--uid={learner.pw_name}",
        f"--gid={learner.pw_name}",
        "-D",
        str(home),
        "-o",
        f"{home}/job-%j.out",
        "--wrap",
        REPORT,
    )
    assert cluster.wait_job(job, FINISHED)["JobState"] == "COMPLETED"
    out = report(home / f"job-{job}.out")
    assert out["uid"] == str(learner.pw_uid)
    assert cluster.job(job)["UserId"].startswith(f"{learner.pw_name}(")


def test_squeue_and_scontrol_show_a_running_job_with_its_resources(cluster, learner):
    job = cluster.sbatch(
        "-p",
        "cpu",
        "-c",
        "3",
        "--mem=700M",
        "-t",
        "10",
        "-o",
        "/dev/null",
        "--wrap",
        "sleep 300",
        user=learner.pw_name,
    )
    try:
        info = cluster.wait_job(job, "RUNNING", timeout=30)
        line = cluster.run("squeue", "--noheader", "-j", job, "-o", "%T %u %P %C %m %l %N").stdout.split()
        assert line[:6] == ["RUNNING", learner.pw_name, "cpu", "3", "700M", "10:00"]
        assert line[6] in cluster.partitions["cpu"].nodes
        assert info["NumCPUs"] == "3"
        assert info["MinMemoryNode"] == "700M"
        assert "cpu=3" in info["TRES"] and "mem=700M" in info["TRES"]
        assert info["BatchHost"] == line[6]
    finally:
        cluster.run("scancel", job)
    assert cluster.wait_job(job, FINISHED)["JobState"] == "CANCELLED"
    assert cluster.run("squeue", "--noheader", "-j", job, check=False).stdout.strip() == ""


def sacct(cluster: SlurmCluster, job: str) -> dict[str, str]:
    fields = "JobID,User,Partition,State,ExitCode,Elapsed,ElapsedRaw,AllocTRES"
    out = cluster.run("sacct", "--noheader", "--parsable2", "-X", "-j", job, f"--format={fields}").stdout
    lines = out.strip().splitlines()
    return dict(zip(fields.split(","), lines[0].split("|"), strict=False)) if lines else {}


def test_sacct_records_finished_jobs_with_state_and_elapsed_time(cluster, learner):
    ok = cluster.sbatch("-p", "cpu", "-o", "/dev/null", "--wrap", "sleep 2", user=learner.pw_name)
    failed = cluster.sbatch("-p", "gpu", "-o", "/dev/null", "--wrap", "exit 3", user=learner.pw_name)
    for job in (ok, failed):
        cluster.wait_job(job, FINISHED)
    # slurmctld sends a job's start and end to slurmdbd asynchronously: until both are stored the
    # record can lack fields (CI once saw a finished job with an empty partition).
    deadline = time.monotonic() + 30

    def recorded(job: str, state: str, partition: str) -> bool:
        record = sacct(cluster, job)
        return (record.get("State"), record.get("Partition")) == (state, partition)

    while not (recorded(ok, "COMPLETED", "cpu") and recorded(failed, "FAILED", "gpu")):
        assert time.monotonic() < deadline, (sacct(cluster, ok), sacct(cluster, failed))
        time.sleep(0.1)
    record = sacct(cluster, ok)
    assert record["User"] == learner.pw_name and record["Partition"] == "cpu"
    assert record["ExitCode"] == "0:0"
    assert 2 <= int(record["ElapsedRaw"]) <= 30 and record["Elapsed"].startswith("00:00:")
    assert "cpu=1" in record["AllocTRES"]
    record = sacct(cluster, failed)
    assert record["Partition"] == "gpu" and record["ExitCode"] == "3:0"


@pytest.mark.parametrize(
    "request_args, reason",
    [
        (["--mem=3G"], "Memory required by task is not available"),  # MaxMemPerNode=2048
        (["-c", "6"], "More processors requested than permitted"),  # MaxCPUsPerNode=4
        (["--gres=gpu:3"], "Requested node configuration is not available"),  # the node has 2
    ],
)
def test_a_request_over_the_gpu_partitions_limits_is_refused(cluster, learner, request_args, reason):
    with pytest.raises(subprocess.CalledProcessError) as refused:
        cluster.sbatch("-p", "gpu", *request_args, "-o", "/dev/null", "--wrap", "true", user=learner.pw_name)
    assert reason in refused.value.stderr
    if "--gres=gpu:3" not in request_args:  # the same request fits the cpu partition
        accepted = cluster.run(
            "sbatch", "--test-only", "-p", "cpu", *request_args, "--wrap", "true", user=learner.pw_name
        )
        assert "to start at" in accepted.stderr


def test_a_user_without_an_association_cannot_submit(cluster):
    stranger = new_account(cluster, register=False)
    try:
        with pytest.raises(subprocess.CalledProcessError) as refused:
            cluster.sbatch("-o", "/dev/null", "--wrap", "true", user=stranger.pw_name)
        assert "Invalid account" in refused.value.stderr
    finally:
        remove_unix_user(stranger)


def test_jobs_survive_a_controller_outage(cluster, learner):
    job = cluster.sbatch("-p", "cpu", "-o", "/dev/null", "--wrap", "sleep 300", user=learner.pw_name)
    try:
        cluster.wait_job(job, "RUNNING", timeout=30)
        cluster.stop_controller()
        assert "DOWN" in cluster.run("scontrol", "ping", check=False).stdout
        steps = [p for p in psutil.process_iter(["name", "cwd"]) if p.info["name"] == "slurmstepd"]
        assert any(p.info["cwd"] == str(cluster.root) for p in steps)  # the job's slurmstepd is still there
        cluster.start_controller()
        assert cluster.wait_job(job, "RUNNING", timeout=30)["JobState"] == "RUNNING"
    finally:
        cluster.run("scancel", job, check=False)


def test_stop_ends_every_daemon_and_job():
    need_cluster()
    root = Path(tempfile.mkdtemp(prefix="ailys-slurm-"))
    try:
        cluster = SlurmCluster(root, nodes=2).start()
        daemons = cluster.running_daemons()
        assert set(daemons) == {"munged", "mariadbd", "slurmdbd", "slurmctld", "slurmd-node1", "slurmd-node2"}
        job = cluster.sbatch("-o", "/dev/null", "--wrap", "sleep 300")
        cluster.wait_job(job, "RUNNING", timeout=30)
        cluster.stop()
        assert cluster.running_daemons() == {}
        for pid in daemons.values():
            assert not psutil.pid_exists(pid), f"daemon {pid} is still there"
        leftovers = []  # daemons, slurmstepd and the job: anything running from the state folder
        for p in psutil.process_iter(["cmdline", "cwd", "status"]):
            text = " ".join(p.info["cmdline"] or []) + " " + (p.info["cwd"] or "")
            if str(root) in text and p.info["status"] != psutil.STATUS_ZOMBIE:
                leftovers.append(p)
        assert leftovers == []
        assert (root / "log" / "slurmctld.log").stat().st_size > 0  # the logs stay
    finally:
        shutil.rmtree(root, ignore_errors=True)
