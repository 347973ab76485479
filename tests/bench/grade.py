"""`make bench-grade`: autograding a class, ours against stock `nbgrader autograde`.

One scikit-learn assignment (sklearn's bundled digits data set, 8 cells, about a second of work),
40 submissions of which one loops forever, graded in one run by:

- stock: `nbgrader autograde ps1 --force` (sequential, a new kernel per notebook), cell timeout 30 s;
- ours, local: `ailys grade` with 2 workers, the same 30 s cell timeout (course.yaml autograde.timeout);
- ours, Slurm: `ailys grade --backend slurm` on the test cluster with 2 nodes of 1 CPU each
  (throttle 2), and with one task at a time (the speed of one node) for the scaling figure;
  skipped, and said so, where the cluster cannot start.

Each runs on its own copy of the course folder, alternately, ``--runs`` times. The peak memory is
the largest sum of the resident memory of the command's process tree (kernels included), sampled
every 0.25 s (proportional set size: the pages forks share are counted once). Prints a table, then `bench: grade-local ...`, `bench: grade-slurm ...` and the peaks.
A run whose command fails is counted (`failures_ours=`, `failures_stock=`), not timed, and the bench goes on.
The Slurm figures' peak memory adds the grading account's processes (the tasks).

    .venv/bin/python -m tests.bench.grade [--runs 1] [--submissions 40] [--no-slurm] [--keep]
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import nbformat
import psutil
import yaml

from grading.autograde.sandbox import TEMPLATE_ENV
from tests.grading_hostile.build import _cell, make_course, submit

BIN = Path(sys.executable).parent
GRADER = "grd-grader"
TIMEOUT = 30  # nbgrader's default cell timeout, for both

ANSWER = """\
def train_model(X, y):
    model = RandomForestClassifier(n_estimators=160, random_state=0)
    return model.fit(X, y)

def cv_score(X, y):
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=400))
    return cross_val_score(pipe, X, y, cv=4).mean()
"""
LOOP = "def train_model(X, y):\n    while True:\n        pass\n\ndef cv_score(X, y):\n    return 0\n"


def assignment_notebook() -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        _cell("markdown", "# Digits\nTrain a classifier on scikit-learn's digits.", "intro", locked=True),
        _cell(
            "code",
            "import numpy as np\nfrom sklearn.datasets import load_digits\n"
            "from sklearn.model_selection import train_test_split, cross_val_score\n"
            "from sklearn.ensemble import RandomForestClassifier\n"
            "from sklearn.linear_model import LogisticRegression\n"
            "from sklearn.pipeline import make_pipeline\nfrom sklearn.preprocessing import StandardScaler",
            "imports",
            locked=True,
        ),
        _cell(
            "code",
            "X, y = load_digits(return_X_y=True)\n"
            "Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.25, random_state=0)",
            "data",
            locked=True,
        ),
        _cell("code", f"### BEGIN SOLUTION\n{ANSWER}### END SOLUTION", "answer", solution=True),
        _cell(
            "code",
            "model = train_model(Xtr, ytr)\nassert model.score(Xte, yte) > 0.9",
            "test_model",
            grade=True,
            locked=True,
            points=2,
        ),
        _cell("code", "assert cv_score(X, y) > 0.9", "test_cv", grade=True, locked=True, points=1),
        _cell("markdown", "Which digits are confused most?", "question", locked=True),
        _cell(
            "code",
            "from sklearn.metrics import confusion_matrix\n"
            "cm = confusion_matrix(yte, model.predict(Xte))\nassert cm.trace() > 0.9 * cm.sum()",
            "test_confusion",
            grade=True,
            locked=True,
            points=1,
        ),
    ]
    return nb


def build(root: Path, submissions: int) -> Path:
    make_course(root, assignment_notebook())
    for i in range(submissions):
        submit(root, f"grd-s{i:03d}", LOOP if i == submissions // 2 else ANSWER)
    return root


class PeakMemory:
    """The largest memory (PSS) of a process tree, sampled every 0.25 s."""

    def __init__(self, process: subprocess.Popen, user: str | None = None):
        self.root, self.peak, self.stop = psutil.Process(process.pid), 0, threading.Event()
        self.user = user  # also count this account's processes (Slurm tasks are not our children)
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def _sample(self) -> None:
        while not self.stop.wait(0.25):
            total = 0
            with contextlib.suppress(psutil.Error):
                tree = {p.pid: p for p in [self.root, *self.root.children(recursive=True)]}
                if self.user:
                    tree.update(
                        (p.pid, p)
                        for p in psutil.process_iter(["username"])
                        if p.info["username"] == self.user
                    )
                for p in tree.values():
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_full_info().pss  # forks share pages: RSS would count them twice
            self.peak = max(self.peak, total)

    def done(self) -> int:
        self.stop.set()
        self.thread.join()
        return self.peak


def timed(
    argv: list[str], cwd: Path, env: dict | None = None, user: str | None = None
) -> tuple[float, int, str]:
    began = time.monotonic()
    process = subprocess.Popen(
        argv, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peak = PeakMemory(process, user)
    out, _ = process.communicate()
    seconds, memory = time.monotonic() - began, peak.done()
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({process.returncode}):\n{out[-3000:]}")
    return seconds, memory, out


def stock(root: Path) -> tuple[float, int]:
    # One BLAS thread, as our kernels have: on a busy 2-core machine OpenBLAS's default pool makes a
    # 0.1 s LogisticRegression take 5 s, and the ratio would measure thread settings, not the engine.
    env = {**os.environ, **{k: v for k, v in TEMPLATE_ENV.items() if k.endswith("_THREADS")}}
    seconds, memory, _ = timed(
        [
            str(BIN / "nbgrader"),
            "autograde",
            "ps1",
            "--force",
            "--CourseDirectory.course_id=grd-course",
            f"--Execute.timeout={TIMEOUT}",
        ],
        cwd=root,
        env=env,
    )
    return seconds, memory


def site_for(base: Path, work: Path, slurm: dict | None = None) -> Path:
    """A site file whose courses_dir holds the course folder grd-course."""
    course = base / "courses" / "grd-course"
    (course / "course.yaml").write_text(
        yaml.safe_dump(
            {
                "slug": "grd-course",
                "title": {"fr": "Bench", "en": "Bench"},
                "kind": "academic",
                "instructors": ["grd-teacher"],
                "start": "2026-01-01",
                "end": "2026-12-31",
                "assignments": [{"name": "ps1"}],
                "autograde": {"timeout": f"{TIMEOUT}s", "memory": "1G"},
            }
        )
    )
    (base / "data").mkdir(exist_ok=True)
    site = base / "grd-bench.yaml"
    site.write_text(
        yaml.safe_dump(
            {
                "name": "grd-bench",
                "data_dir": str(base / "data"),
                "courses_dir": str(base / "courses"),
                "grading": {"user": GRADER, "work_dir": str(work), "workers": 2, **(slurm or {})},
            }
        )
    )
    return site


def ours(site: Path, backend: str = "local", env: dict | None = None) -> tuple[float, int]:
    course = site.parent / "courses" / "grd-course"  # the nbgrader course folder, as build() made it
    seconds, memory, out = timed(
        [
            str(BIN / "ailys"),
            "grade",
            "grd-course",
            "ps1",
            "--backend",
            backend,
            "--workers",
            "2",
            "--site",
            str(site),
            "--course-dir",
            str(course),
        ],
        cwd=site.parent,
        env=env,
        user=GRADER if backend == "slurm" else None,
    )
    if "graded" not in out:
        raise RuntimeError(out)
    return seconds, memory


def check_grades(root: Path, submissions: int) -> str:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root}/gradebook.db", "grd-course") as gb:
        got = sorted(s.score for s in gb.find_assignment("ps1").submissions)
    return f"{got.count(4.0)} x 4/4, {len(got) - got.count(4.0)} other (expected {submissions - 1} x 4/4, 1 other)"


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan  # every run failed


def line(name: str, ours_s: list[float], stock_s: list[float], failed_ours: int, failed_stock: int) -> str:
    o, s = median(ours_s), median(stock_s)
    ratio = o / s if s else math.nan
    n, failed = len(ours_s) + failed_ours, f"failures_ours={failed_ours} failures_stock={failed_stock}"
    return f"bench: {name} ours={o:.1f} stock={s:.1f} ratio={ratio:.2f} n={n} {failed}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--submissions", type=int, default=40)
    parser.add_argument("--no-slurm", action="store_true")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("bench-grade runs kernels as a grading account: run it as root", file=sys.stderr)
        return 2
    os.environ["PATH"] = f"{BIN}{os.pathsep}{os.environ['PATH']}"
    subprocess.run(
        ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", GRADER],
        capture_output=True,
    )
    base = Path(tempfile.mkdtemp(prefix="grd-bench-"))
    base.chmod(0o755)
    rows: list[tuple[str, float, int, str]] = []
    times: dict[str, list[float]] = {"stock": [], "local": [], "slurm": [], "slurm-1": []}
    peaks: dict[str, int] = dict.fromkeys(times, 0)
    failures: dict[str, int] = dict.fromkeys(times, 0)
    try:
        template = build(base / "template", args.submissions)
        work = base / "work"
        work.mkdir(mode=0o755)
        cluster = None if args.no_slurm else _start_cluster(base)
        for run in range(args.runs):
            for kind in ("stock", "local", "slurm", "slurm-1"):
                if kind.startswith("slurm") and cluster is None:
                    continue
                folder = base / f"{kind}-{run}"
                course = folder / "courses" / "grd-course"
                shutil.copytree(template, course)
                try:
                    if kind == "stock":
                        seconds, memory = stock(course)
                    elif kind == "local":
                        seconds, memory = ours(site_for(folder, work))
                    else:  # slurm: both nodes; slurm-1: one task at a time, the speed of one 1-CPU node
                        grading = {**cluster["grading"], "throttle": 2 if kind == "slurm" else 1}
                        site = site_for(folder, cluster["shared"], grading)
                        seconds, memory = ours(site, "slurm", env=cluster["env"])
                except RuntimeError as err:  # counted, not timed: the other runs still say something
                    failures[kind] += 1
                    rows.append((kind, math.nan, 0, "FAILED: " + str(err).splitlines()[0]))
                    print(f"run {run + 1} {kind:<6} FAILED\n{err}", file=sys.stderr, flush=True)
                    continue
                times[kind].append(seconds)
                peaks[kind] = max(peaks[kind], memory)
                rows.append((kind, seconds, memory, check_grades(course, args.submissions)))
                print(
                    f"run {run + 1} {kind:<6} {seconds:7.1f} s  peak {memory / 1024**2:7.0f} MB  {rows[-1][3]}",
                    file=sys.stderr,
                    flush=True,
                )
    finally:
        if not args.no_slurm:
            _stop_cluster()
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
        subprocess.run(["userdel", GRADER], capture_output=True)
    print(f"{'grader':<8} {'seconds':>8} {'peak MB':>8}  grades")
    for kind, seconds, memory, grades in rows:
        print(f"{kind:<8} {seconds:8.1f} {memory / 1024**2:8.0f}  {grades}")
    print(line("grade-local", times["local"], times["stock"], failures["local"], failures["stock"]))
    if times["slurm"] or failures["slurm"]:
        print(line("grade-slurm", times["slurm"], times["stock"], failures["slurm"], failures["stock"]))
        speedup = median(times["slurm-1"]) / median(times["slurm"])
        print(
            f"bench: grade-slurm-scaling nodes=2 speedup={speedup:.2f} efficiency={speedup / 2:.2f} "
            f"(goal >= 0.8; one node: {median(times['slurm-1']):.1f} s, {failures['slurm-1']} failed)"
        )
    else:
        print("bench: grade-slurm SKIPPED (no Slurm test cluster on this machine)")
    for kind in times:
        if times[kind]:
            print(f"bench: grade-{kind} peak_memory={peaks[kind] / 1024**2:.0f}MB")
    return 0


_cluster_stack = contextlib.ExitStack()


def _start_cluster(base: Path) -> dict | None:
    """The test Slurm cluster with 2 nodes, the grading account registered (None if it cannot start)."""
    from tests.services.slurm import SlurmCluster, slurm_cluster

    if SlurmCluster.missing_programs():
        print(f"no Slurm test cluster: missing {', '.join(SlurmCluster.missing_programs())}", file=sys.stderr)
        return None
    # a scheduling pass every second, as on a grading partition that starts array tasks at once
    extra = "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=1"
    cluster = _cluster_stack.enter_context(
        slurm_cluster(base / "slurm", nodes=2, cpus=1, memory_mb=4096, extra_config=extra)
    )
    cluster.add_user(GRADER)
    shared = base / "shared"
    shared.mkdir(mode=0o755)
    return {
        "env": cluster.env,
        "shared": shared,
        "grading": {"partition": "cpu", "account": cluster.accounts[0], "throttle": 2},
    }


def _stop_cluster() -> None:
    _cluster_stack.close()


if __name__ == "__main__":
    sys.exit(main())
