"""The Slurm backend against the real test cluster (2 nodes on 127.0.0.2 and 127.0.0.3): one
array job, throttled, as the grading account (grd-slurm), results merged into the gradebook,
a task lost with its node requeued once."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import psutil
import pytest
import yaml
from nbgrader.api import Gradebook

from grading.autograde import slurm as slurm_backend
from grading.autograde.course import Course
from grading.autograde.engine import Settings
from grading.autograde.slurm import grade_slurm
from hub_config.schema import Grading
from tests.grading_hostile.build import ASSIGNMENT, SECRET, make_course, marker, submit
from tests.services import remove_unix_user
from tests.services.slurm import cluster_for_tests

pytestmark = pytest.mark.slurm
GRADER = "grd-slurm"
RIGHT, WRONG = "def square(x):\n    return x * x\n", "def square(x):\n    return x + x\n"


@pytest.fixture(scope="module")
def cluster(request):
    # one CPU a node: two tasks at once must use both nodes
    extra = "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=1"
    yield from cluster_for_tests(
        request, nodes=2, cpus=1, memory_mb=4096, slurmd_timeout=10, extra_config=extra
    )


@pytest.fixture(scope="module")
def grader(cluster):
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", GRADER],
        capture_output=True,
    )
    cluster.add_user(GRADER)
    yield GRADER
    try:
        remove_unix_user(pwd.getpwnam(GRADER))
    except KeyError:
        pass


@pytest.fixture
def work_dir():
    path = Path(tempfile.mkdtemp(prefix="grd-slurm-work-"))
    path.chmod(0o755)
    yield path
    shutil.rmtree(path, ignore_errors=True)


def settings(work_dir: Path, timeout: int = 5) -> Settings:
    return Settings(timeout=timeout, total_timeout=90, user=GRADER, work_dir=work_dir, preload=("numpy",))


def scores(root: Path) -> dict[str, float]:
    with Gradebook(f"sqlite:///{root}/gradebook.db", "grd-course") as gb:
        return {s.student.id: s.score for s in gb.find_assignment(ASSIGNMENT).submissions}


def test_one_throttled_array_job_grades_the_class(cluster, grader, work_dir, tmp_path, monkeypatch):
    root = make_course(tmp_path / "course")
    answers = {f"grd-s{i}": RIGHT if i % 2 else WRONG for i in range(6)}
    answers["grd-loop"] = "while True:\n    pass\n"
    answers["grd-source"] = f"print(open({str(root / 'source' / ASSIGNMENT / 'ps1.ipynb')!r}).read())\n"
    for student, answer in answers.items():
        submit(root, student, answer)
    submit(root, "grd-invalid", raw="{not json")
    results: list[dict] = []
    original = slurm_backend.record_result
    monkeypatch.setattr(
        slurm_backend, "record_result", lambda c, a, r: (results.append(r), original(c, a, r))[1]
    )
    grading = Grading(user=GRADER, partition="cpu", account=cluster.accounts[0], throttle=2)
    seen_throttle = {}

    def watch() -> None:  # the array as Slurm holds it, while it runs
        for _ in range(200):
            out = subprocess.run(
                ["squeue", "--noheader", "--array", "--format=%i %u %P %a %T"],
                env=cluster.env,
                capture_output=True,
                text=True,
            ).stdout
            for line in out.splitlines():
                job, user, partition, account, state = line.split()
                seen_throttle.setdefault("tasks", set()).add((user, partition, account))
            show = subprocess.run(
                ["scontrol", "show", "job", "--oneliner"], env=cluster.env, capture_output=True, text=True
            ).stdout
            if "ArrayTaskThrottle=" in show and seen_throttle.get("tasks"):  # both seen: done
                seen_throttle["throttle"] = show.split("ArrayTaskThrottle=")[1].split()[0]
                return
            time.sleep(0.1)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    summary = grade_slurm(
        Course(root, "grd-course"), ASSIGNMENT, settings(work_dir), grading, env=cluster.env, timeout=300
    )
    watcher.join()

    expected = {s: (1.0 if a == RIGHT else 0.0) for s, a in answers.items()} | {"grd-invalid": 0.0}
    assert scores(root) == expected
    assert len(summary.outcomes) == len(expected)
    assert "time limit of 5 s" in " ".join(marker(root, "grd-loop")["reasons"])
    assert "not a valid notebook" in " ".join(marker(root, "grd-invalid")["reasons"])
    assert SECRET not in (root / "autograded" / "grd-source" / ASSIGNMENT / "ps1.ipynb").read_text()
    # one array, on the grading partition and account, as the grading account, at most 2 at once
    assert seen_throttle.get("throttle") == "2"
    assert {t for t in seen_throttle["tasks"]} == {(GRADER, "cpu", cluster.accounts[0])}
    assert {r["node"] for r in results} == {"node1", "node2"}
    spans = sorted((r["started"], r["ended"]) for r in results)
    most = max(sum(1 for s, e in spans if s <= t < e) for t, _ in spans)
    assert most <= 2
    # the working copies are gone
    assert list(work_dir.iterdir()) == []


@pytest.mark.slow
def test_a_task_lost_with_its_node_is_requeued_once(cluster, grader, work_dir, tmp_path, monkeypatch):
    """Kill a node (its slurmd and the task on it) while a submission runs there: Slurm requeues
    the task on the other node, and its result is merged like any other."""
    root = make_course(tmp_path / "course")
    submit(root, "grd-slow", "import time\ntime.sleep(20)\n" + RIGHT)
    grading = Grading(user=GRADER, partition="cpu", account=cluster.accounts[0], throttle=1)
    killed = {}

    def kill_the_node() -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            out = subprocess.run(
                ["squeue", "--noheader", "--array", "--user", GRADER, "--format=%T %N"],
                env=cluster.env,
                capture_output=True,
                text=True,
            ).stdout.split()
            if out[:1] == ["RUNNING"] and len(out) == 2:
                node = out[1]
                doomed = []  # the node's slurmd, and the task with its slurmstepd: a node that vanishes
                # Of this cluster only: another worker's test module may run a cluster with a node of
                # the same name and tasks of the same grading account (its slurmd works in its own
                # state folder, its tasks carry its SLURM_CONF).
                for p in psutil.process_iter(["cmdline", "username", "cwd"]):
                    try:
                        ours = (p.info["cwd"] or "").startswith(f"{cluster.root}")
                        if ours and " ".join(p.info["cmdline"] or []).endswith(f"slurmd -D -N {node}"):
                            doomed.append(p)
                        elif (
                            p.info["username"] == GRADER
                            and p.environ().get("SLURMD_NODENAME") == node
                            and p.environ().get("SLURM_CONF") == str(cluster.slurm_conf)
                        ):
                            doomed.append(p)
                            doomed += [a for a in p.parents() if a.name() == "slurmstepd"]
                    except psutil.Error:
                        pass
                if not any(getattr(p, "info", {}).get("username") == GRADER for p in doomed):
                    # squeue says RUNNING before the node has started the task: killing slurmd
                    # alone then would let an already started slurmstepd finish it there.
                    time.sleep(0.2)
                    continue
                for p in doomed:  # stopped first, so that none of them reports the others' death
                    with contextlib.suppress(psutil.Error):
                        p.suspend()
                for p in doomed:
                    with contextlib.suppress(psutil.Error):
                        p.kill()
                killed["node"] = node
                return
            time.sleep(0.2)

    results: list[dict] = []
    original = slurm_backend.record_result
    monkeypatch.setattr(
        slurm_backend, "record_result", lambda c, a, r: (results.append(r), original(c, a, r))[1]
    )
    killer = threading.Thread(target=kill_the_node, daemon=True)
    killer.start()
    # Slurm holds a requeued job back for a while (its begin time) before it runs again
    summary = grade_slurm(
        Course(root, "grd-course"),
        ASSIGNMENT,
        settings(work_dir, timeout=60),
        grading,
        env=cluster.env,
        timeout=400,
    )
    killer.join()
    assert killed, "the task never ran"
    assert [o.score for o in summary.outcomes] == [1.0], summary.outcomes
    assert marker(root, "grd-slow")["status"] == "graded"
    assert results[0]["restarts"] == 1 and results[0]["node"] != killed["node"]  # requeued once, elsewhere
    node = cluster.node(killed["node"])
    cluster._start_daemon(
        f"slurmd-{node.name}", ["slurmd", "-D", "-N", node.name], log=f"slurmd-{node.name}.log"
    )


def test_ailys_grade_on_the_slurm_backend_reads_the_cluster_from_the_site_file(
    cluster, grader, work_dir, tmp_path
):
    courses = tmp_path / "courses"
    root = make_course(courses / "grd-course")
    (root / "course.yaml").write_text(
        yaml.safe_dump(
            {
                "slug": "grd-course",
                "title": {"fr": "Cours", "en": "Course"},
                "kind": "academic",
                "instructors": ["grd-teacher"],
                "start": "2026-01-01",
                "end": "2026-12-31",
                "assignments": [{"name": ASSIGNMENT}],
                "autograde": {"timeout": "5s", "preload": ["numpy"]},
            }
        )
    )
    submit(root, "grd-a", RIGHT)
    submit(root, "grd-b", WRONG)
    site = tmp_path / "grd-slurm.yaml"
    site.write_text(
        yaml.safe_dump(
            {
                "name": "grd-slurm",
                "data_dir": str(tmp_path / "data"),
                "courses_dir": str(courses),
                "spawner": {"slurm": {"slurm_conf": str(cluster.slurm_conf)}},
                "grading": {
                    "user": GRADER,
                    "work_dir": str(work_dir),
                    "partition": "cpu",
                    "account": cluster.accounts[0],
                    "throttle": 2,
                },
            }
        )
    )
    (tmp_path / "data").mkdir()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("SLURM")
    }  # the site file names the cluster
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "ailys"),
            "grade",
            "grd-course",
            ASSIGNMENT,
            "--backend",
            "slurm",
            "--course-dir",
            str(root),
            "--site",
            str(site),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "graded 2, failed 0, skipped (already graded) 0" in done.stdout
    assert scores(root) == {"grd-a": 1.0, "grd-b": 0.0}
