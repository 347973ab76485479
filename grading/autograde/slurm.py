"""The Slurm backend: one array job, one task per submission, results merged by the one writer.

The process running ``ailys grade --backend slurm`` prepares every submission (gradebook side) and
its working copy in the shared work folder, writes the jobs to ``jobs.json`` there, and submits
one array job (``--array=0-N%throttle``) on the site's grading partition and account, as the
grading account (``sbatch --uid`` when root). Each task (grading/autograde/task.py) executes one
submission exactly as a local worker does (template, fork, namespaces) and writes
``results/<index>.json``; this process records each result in the gradebook as it appears.

A task on a node that fails is requeued by Slurm (``--requeue``) once: a task that starts a third
time (SLURM_RESTART_COUNT > 1) gives up with a reason. A task that ends with no result (killed,
cancelled, lost twice) is recorded as failed, with the state Slurm reports.

Nothing of the submitter's environment reaches a task: the Slurm commands run with the grading
path's allow-list (``client_env``: no token, no secret) and the job with ``--export=NONE``; the
task script sets its own PATH, PYTHONPATH and HOME, and its template starts from the allow-list
again. The submitter's home is hidden from the kernels like the course folder.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from pathlib import Path

from .course import Course, Outcome, SubmissionError
from .engine import Settings, Summary, make_job, record_result, select, work_root
from .sandbox import grading_env, private_paths

CHECKOUT = str(Path(__file__).resolve().parents[2])
POLL = 0.5
SILENCE = 300  # seconds of failing squeue before the grading gives up on the cluster


def client_env(slurm_conf: str | os.PathLike | None = None) -> dict[str, str]:
    """The environment of sbatch, squeue, scancel and sacct: the allow-list, and the cluster's
    SLURM_CONF (``slurm_conf``, else this process's)."""
    conf = slurm_conf or os.environ.get("SLURM_CONF")
    return grading_env(**({"SLURM_CONF": str(conf)} if conf else {}))


class SlurmError(RuntimeError):
    """sbatch refused the array job, or the cluster does not answer."""


def batch_script(root: Path, count: int) -> str:
    """The array task: the same Python, our checkout on its path, nothing of the submitter's env."""
    return "\n".join(
        [
            "#!/bin/sh",
            f"export PATH={os.path.dirname(sys.executable)}:/usr/bin:/bin PYTHONPATH={CHECKOUT} HOME={root}",
            f'exec {sys.executable} -m grading.autograde.task {root / "jobs.json"} "$SLURM_ARRAY_TASK_ID"',
            "",
        ]
    )


def sbatch_argv(
    root: Path, count: int, settings: Settings, grading, user: str | None, name: str = "ailys-grade"
) -> list[str]:
    minutes = max(1, -(-(settings.total_timeout + 120) // 60))  # the submission's limit, plus start-up
    argv = [
        "sbatch",
        "--parsable",
        f"--array=0-{count - 1}%{grading.throttle}",
        f"--job-name={name}",  # footprint/sacct.py reads the course and assignment from it
        "--cpus-per-task=1",
        f"--mem={(settings.memory + 1024**3) // 1024**2}M",
        f"--time={minutes}",
        "--requeue",
        "--export=NONE",
        f"--chdir={root}",
        f"--output={root}/logs/task-%a.log",
    ]
    if grading.partition:
        argv.append(f"--partition={grading.partition}")
    if grading.account:
        argv.append(f"--account={grading.account}")
    if user and os.geteuid() == 0:
        argv += [f"--uid={user}", f"--gid={user}"]
    return argv + [str(root / "task.sh")]


def grade_slurm(
    course: Course,
    assignment: str,
    settings: Settings,
    grading,
    only_new: bool = False,
    students: list[str] | None = None,
    progress: Callable[[Outcome], None] | None = None,
    env: dict | None = None,
    timeout: float | None = None,
) -> Summary:
    """Grade the submissions as one Slurm array job; ``grading`` is the site's grading settings."""
    started = time.monotonic()
    env = env or client_env()
    todo, skipped = select(course, assignment, only_new, students)
    summary = Summary(skipped=skipped)

    def done(outcome: Outcome) -> None:
        summary.outcomes.append(outcome)
        if progress:
            progress(outcome)

    jobs, private = [], private_paths(settings.user)  # this process's home: known here only
    root = work_root(settings, course, assignment)
    try:
        for student in todo:
            try:
                job = make_job(course, settings, student, assignment, root)
                jobs.append(replace(job, hide=[*job.hide, *(p for p in private if p not in job.hide)]))
            except SubmissionError as error:
                done(course.record_failure(student, assignment, str(error)))
        if jobs:
            _run_array(course, assignment, settings, grading, root, jobs, env, done, timeout)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    summary.seconds = time.monotonic() - started
    return summary


def _run_array(course, assignment, settings, grading, root: Path, jobs, env, done, timeout) -> None:
    owner = settings.owner()
    for sub in ("results", "logs"):
        (root / sub).mkdir()
    (root / "jobs.json").write_text(json.dumps([asdict(j) for j in jobs]))
    (root / "task.sh").write_text(batch_script(root, len(jobs)))
    (root / "task.sh").chmod(0o755)
    if owner and os.geteuid() == 0:
        for path in (root, root / "results", root / "logs", root / "jobs.json", root / "task.sh"):
            os.chown(path, *owner)
        root.chmod(0o700)  # the grading account only: other accounts' jobs read nothing here
    # the energy records' course and assignment (footprint/sacct.py); the nbgrader course id is the slug
    slug = course.coursedir.course_id
    name = f"ailys-grade-{slug}/{assignment}" if slug else "ailys-grade"
    argv = sbatch_argv(root, len(jobs), settings, grading, settings.user, name)
    submitted = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    if submitted.returncode != 0:
        for job in jobs:
            done(
                course.record_failure(
                    job.key, assignment, f"sbatch refused the grading job: {submitted.stderr.strip()}"
                )
            )
        raise SlurmError(f"sbatch refused the grading job: {submitted.stderr.strip()}")
    job_id = submitted.stdout.strip().split(";")[0]
    pending = dict(enumerate(jobs))
    deadline = time.monotonic() + (timeout or settings.total_timeout * len(jobs) + 600)
    answered = time.monotonic()
    try:
        while pending:
            for index in sorted(pending):
                result_file = root / "results" / f"{index}.json"
                if result_file.exists():
                    job = pending.pop(index)
                    try:
                        result = json.loads(result_file.read_text())
                    except ValueError as error:
                        result = {"key": job.key, "error": f"the Slurm task's result is unreadable: {error}"}
                    result["key"] = job.key  # never trust a task's word about whose result it is
                    done(record_result(course, assignment, result))
            if not pending:
                break
            alive = _array_alive(job_id, env)
            if alive is None:
                if time.monotonic() - answered > SILENCE:
                    raise SlurmError(
                        f"Slurm has not answered for {SILENCE} s (squeue fails); job {job_id} abandoned"
                    )
            else:
                answered = time.monotonic()
            if alive is False and not any((root / "results" / f"{i}.json").exists() for i in pending):
                for index, job in sorted(pending.items()):
                    state = _task_state(job_id, index, env)
                    done(
                        course.record_failure(
                            job.key, assignment, f"the Slurm task ended without a result (state {state})"
                        )
                    )
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"grading job {job_id} still running after its deadline")
            time.sleep(POLL)
    except (SlurmError, TimeoutError) as error:
        with contextlib.suppress(OSError, subprocess.TimeoutExpired):
            subprocess.run(["scancel", job_id], env=env, capture_output=True, timeout=60)
        for _, job in sorted(pending.items()):
            done(course.record_failure(job.key, assignment, f"not graded: {error}"))
        pending.clear()
        raise
    finally:
        if pending:
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                subprocess.run(["scancel", job_id], env=env, capture_output=True, timeout=60)


def _array_alive(job_id: str, env: dict) -> bool | None:
    """Does any task of the array still wait or run? None: squeue does not answer."""
    try:
        result = subprocess.run(
            ["squeue", "--noheader", "--array", "--jobs", job_id, "--format=%T"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return False if "Invalid job id" in result.stderr else None
    return bool(result.stdout.strip())


def _task_state(job_id: str, index: int, env: dict) -> str:
    result = subprocess.run(
        [
            "sacct",
            "--noheader",
            "--parsable2",
            "--jobs",
            f"{job_id}_{index}",
            "--format=State",
            "--allocations",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return (result.stdout.split() or ["unknown"])[0]
