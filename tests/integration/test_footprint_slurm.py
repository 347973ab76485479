"""`ailys energy collect` on a real Slurm cluster (tests/services/slurm.py): a job that burns CPU
gets a record with core usage near 1 and the energy the model computes from its sacct line; an
idle job costs less; reading sacct again adds nothing."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from footprint.collect import footprint_of_job
from footprint.records import connect, read
from footprint.sacct import parse, sacct_argv
from hub_config.schema.energy import Energy
from tests.conftest import OUTPUT
from tests.services import remove_unix_user, unix_user
from tests.services.slurm import cluster_for_tests

pytestmark = pytest.mark.slurm

CHECKOUT = Path(__file__).parents[2]
# 4 s of CPU, however long the machine takes to give them.
# 4 s of CPU, then the wall time that took: the share of a core the machine gave the job.
BUSY = (
    "import pathlib, sys, time\nt = time.perf_counter()\nwhile time.process_time() < 4: pass\n"
    "pathlib.Path(sys.argv[1]).write_text(str(time.perf_counter() - t))\n"
)


@pytest.fixture(scope="module")
def cluster(request):
    yield from cluster_for_tests(request)


@pytest.fixture(scope="module")
def learner(cluster):
    user = unix_user("nrg-learner", cluster.root / "home")
    cluster.add_user(user.pw_name)
    yield user
    remove_unix_user(user)


def sacct_job(cluster, job_id: str, timeout: float = 30):
    """The job's accounting record once slurmdbd has its end (it arrives after scontrol's)."""
    import datetime as dt

    deadline = time.monotonic() + timeout
    while True:
        argv = sacct_argv(dt.datetime.now(dt.UTC) - dt.timedelta(hours=1))
        jobs = [j for j in parse(cluster.run(*argv).stdout) if j.job_id == job_id]
        if jobs and jobs[-1].ended and jobs[-1].end:
            return jobs[-1]
        if time.monotonic() > deadline:
            raise TimeoutError(f"sacct has no end for job {job_id} after {timeout} s: {jobs}")
        time.sleep(0.2)


def test_a_busy_job_is_recorded_with_its_core_usage_and_the_models_energy(cluster, learner, tmp_path):
    home = Path(learner.pw_dir)
    (home / "busy.py").write_text(BUSY)
    common = ["--chdir", str(home), "-o", "/dev/null", "-c", "1", "--mem=512M", "--job-name=ailys-nrg-course"]
    took = home / "busy-wall.txt"
    busy = cluster.sbatch(
        *common, "--wrap", f"/usr/bin/python3 {home / 'busy.py'} {took}", user=learner.pw_name
    )
    idle = cluster.sbatch(*common, "--wrap", "sleep 5", user=learner.pw_name)
    for job in (busy, idle):
        cluster.wait_job(job, {"COMPLETED"}, timeout=60)
    busy_line, idle_line = sacct_job(cluster, busy), sacct_job(cluster, idle)

    (tmp_path / "courses").mkdir()
    (tmp_path / "data").mkdir()
    site = {
        "name": "nrg-slurm",
        "data_dir": "data",
        "courses_dir": "courses",
        "spawner": {"kind": "slurm", "slurm": {"slurm_conf": str(cluster.slurm_conf)}},
    }
    (tmp_path / "nrg-slurm.yaml").write_text(yaml.safe_dump(site))
    command = [
        sys.executable,
        "-m",
        "hub_config.cli",
        "energy",
        "collect",
        "--site",
        str(tmp_path / "nrg-slurm.yaml"),
    ]
    first = subprocess.run(command, capture_output=True, text=True, cwd=CHECKOUT, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("2 new records"), first.stdout
    again = subprocess.run(command, capture_output=True, text=True, cwd=CHECKOUT, timeout=120)
    assert again.stdout.startswith("0 new records"), again.stdout  # idempotent: nothing counted twice

    engine = connect(f"sqlite:///{tmp_path / 'data' / 'jupyterhub.sqlite'}")
    try:
        records = {r.ref: r for r in read(engine)}
    finally:
        engine.dispose()
    mine = records[busy]
    assert (mine.kind, mine.course, mine.who, mine.partition, mine.method) == (
        "slurm",
        "nrg-course",
        learner.pw_name,
        "cpu",
        "estimate",
    )
    # 4 CPU seconds in one core's job: its usage is that CPU time over its elapsed time, which is
    # near 1 on a quiet node. On a 2-core machine running the rest of the suite beside it the job
    # gets what the machine gives it (CI saw 4 s of CPU in 34 s): the figure must follow the share
    # the job itself measured, whatever it was. Elapsed is in whole seconds and includes Python's
    # start, hence the margin.
    assert busy_line.total_cpu_s == pytest.approx(4, abs=0.3)
    share = 4 / float(took.read_text())  # of a core, during the loop
    assert mine.core_usage == pytest.approx(4 / busy_line.elapsed_s, abs=0.15), (share, busy_line)
    assert mine.core_usage <= 1.0
    if share >= 0.9:  # a quiet node: near 1, as the issue asks
        assert mine.core_usage >= 0.5, (share, busy_line)
    assert mine.core_usage == pytest.approx(busy_line.core_usage), busy_line  # the model, on its sacct line
    assert mine == footprint_of_job(busy_line, Energy())  # the model's arithmetic on its sacct line
    hours = busy_line.elapsed_s / 3600
    watts = 7.5 * min(1, busy_line.total_cpu_s / busy_line.elapsed_s) + 0.5 * 0.3725
    assert mine.energy_wh == pytest.approx(hours * watts * 1.56)
    assert records[idle].core_usage < 0.2
    assert records[idle].energy_wh < mine.energy_wh
    assert records[idle] == footprint_of_job(idle_line, Energy())


@pytest.mark.hub
def test_a_job_that_ends_while_the_hub_is_down_is_recorded_when_it_comes_back(cluster, learner):
    """The footprint service collects at its start: a session's job and an autograde array that
    ended while the hub (and so the service) was killed get their records once it is back."""
    import signal

    from footprint.pages import assignment_runs
    from hub_config.appliers.storage import database_url
    from tests.services.hub import RunningHub, course, wait_until

    site = {
        "spawner": {
            "kind": "slurm",
            "slurm": {"slurm_conf": str(cluster.slurm_conf), "default_partition": "cpu"},
        },
        "energy": {"service": {"collect_every": "10s"}},
    }
    hub = RunningHub([course("fpt-hpc", ["fpt-prof"], [learner.pw_name])], site=site).start()
    try:
        home = Path(learner.pw_dir)
        common = ["--chdir", str(home), "-o", "/dev/null", "-c", "1", "--mem=256M"]
        session = cluster.sbatch(
            *common, "--job-name=ailys-fpt-hpc", "--wrap", "sleep 3", user=learner.pw_name
        )
        grading = cluster.sbatch(
            *common,
            "--array=0-1",
            "--job-name=ailys-grade-fpt-hpc/tp1",
            "--wrap",
            "sleep 2",
            user=learner.pw_name,
        )
        hub.stop_hub(signal.SIGKILL)  # the hub and its services die; the jobs run on
        cluster.wait_job(session, {"COMPLETED"}, timeout=60)
        sacct_job(cluster, session)
        sacct_job(cluster, f"{grading}_1")
        hub.start_hub()

        def stored():
            engine = connect(database_url(hub.catalogue))
            try:
                found = {r.ref: r for r in read(engine, course="fpt-hpc")}
            finally:
                engine.dispose()
            return found if {session, f"{grading}_0", f"{grading}_1"} <= set(found) else None

        found = wait_until(stored, 60, "the records of the jobs that ended while the hub was down")
        assert (found[session].kind, found[session].who) == ("slurm", learner.pw_name)
        tasks = [found[f"{grading}_{i}"] for i in (0, 1)]
        assert all(t.kind == "autograde" and t.assignment == "tp1" for t in tasks)
        run = assignment_runs(found.values())["tp1"]  # the run total: its tasks summed
        assert run.records == 2 and run.energy.value == pytest.approx(sum(t.energy_wh for t in tasks))
        assert "footprint" in hub.log()
    finally:
        hub.stop()


@pytest.mark.hub
def test_a_running_slurm_sessions_figure_grows_from_sstat(cluster, learner):
    """The status bar's figure of a Slurm session is its job's CPU time so far (sstat of its batch
    step), not the allocation: it grows while a cell computes, labelled estimate."""
    from tests.integration.test_footprint_hub import me
    from tests.integration.test_local_hub import run_code
    from tests.services.hub import RunningHub, course, wait_until

    site = {
        "spawner": cluster.spawner_site(),
        "energy": {"service": {"sample_every": "2s"}},
    }
    slug = "e14-live"
    hub = RunningHub([course(slug, ["e14-prof"], [learner.pw_name])], site=site).start()
    name = learner.pw_name
    try:
        client = hub.login(name)
        hub.spawn(client, name, timeout=120)
        first = wait_until(
            lambda: [s for s in me(client)["sessions"] if s["method"] == "estimate"],
            60,
            "a figure from sstat (not the allocation's)",
        )[0]
        assert first["kind"] == "slurm" and first["course"] == slug
        run_code(hub, client, name, BUSY)  # 4 s of CPU in the session's kernel, on the node
        grown = wait_until(
            lambda: (s := me(client)["sessions"][0])["cpu_seconds"] >= first["cpu_seconds"] + 3.5 and s,
            60,
            "the session's CPU time to count the cell's 4 s",
        )
        assert grown["method"] == "estimate"
        assert grown["energy_wh"]["value"] > first["energy_wh"]["value"]
        assert grown["energy_wh"]["low"] <= grown["energy_wh"]["value"] <= grown["energy_wh"]["high"]
    finally:
        OUTPUT.mkdir(exist_ok=True)
        (OUTPUT / "test_footprint_slurm-live-hub.log").write_text(hub.log())
        hub.stop()
