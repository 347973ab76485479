"""A grading worker: a process, run as the grading account, that executes jobs read on stdin.

One JSON line in (a Job), one JSON line out (its result). ``Workers`` keeps N of them busy from
threads of the grading process; a worker that dies costs only the submission it was running
(recorded as failed, with the reason) and is started again. A worker starts from the grading
path's allow-list environment (sandbox.grading_env): whatever token or secret the grading
process holds stays there, out of reach of the workers' templates and kernels.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
import time
from dataclasses import asdict, replace
from pathlib import Path

from .execute import Job, run_job, start_worker
from .sandbox import grading_env, private_paths


class Workers:
    """``count`` worker processes; ``submit(job)``, then ``results`` yields dicts as they finish."""

    def __init__(self, count: int, preload: list[str], user: str | None, log: Path | None = None):
        self.jobs: queue.Queue = queue.Queue()
        self.results: queue.Queue = queue.Queue()
        self.argv = [sys.executable, "-m", "grading.autograde.worker", json.dumps(list(preload))]
        self.user = user
        self.log = open(log, "ab") if log else subprocess.DEVNULL  # workers' own messages
        self.env = grading_env(HOME=os.environ.get("HOME", "/"))
        if user:
            import pwd

            self.env["HOME"] = pwd.getpwnam(user).pw_dir
        self.private = private_paths(user)  # this process's, known here only
        self.processes: list[subprocess.Popen] = []
        self.threads = [threading.Thread(target=self._serve, daemon=True) for _ in range(count)]
        for thread in self.threads:
            thread.start()

    def _start(self) -> subprocess.Popen:
        process = subprocess.Popen(
            self.argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=self.env,
            stderr=self.log,
            user=self.user,
            group=_group(self.user),
            extra_groups=[] if self.user else None,
            cwd="/",
            text=True,
        )
        self.processes.append(process)
        return process

    def _serve(self) -> None:
        process = None
        while True:
            job = self.jobs.get()
            if job is None:
                break
            if process is None or process.poll() is not None:
                process = self._start()
            began, cpu = time.time(), _tree_cpu(process.pid)
            try:
                process.stdin.write(json.dumps(asdict(job)) + "\n")
                process.stdin.flush()
                line = process.stdout.readline()
                result = json.loads(line) if line else None
            except (OSError, ValueError):
                result = None
            if isinstance(result, dict):  # the task's CPU time, for its energy record (footprint/)
                result["usage"] = {
                    "cpu_s": max(0.0, _tree_cpu(process.pid) - cpu),
                    "start": began,
                    "end": time.time(),
                }
            if result is None:
                code = process.poll()
                result = {"key": job.key, "error": f"the grading worker ended unexpectedly (exit {code})"}
                process.kill()
                process = None
            self.results.put(result)
        if process is not None:
            process.stdin.close()
            process.wait()

    def submit(self, job: Job) -> None:
        self.jobs.put(replace(job, hide=[*job.hide, *(p for p in self.private if p not in job.hide)]))

    def close(self) -> None:
        for _ in self.threads:
            self.jobs.put(None)
        for thread in self.threads:
            thread.join(timeout=30)
        for process in self.processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        if self.log is not subprocess.DEVNULL:
            self.log.close()


def _tree_cpu(pid: int) -> float:
    """CPU seconds of a worker and its kernels so far (/proc; 0 where it cannot be read)."""
    from footprint.sampler import process_tree_cpu_seconds

    try:
        return process_tree_cpu_seconds(pid)
    except OSError:
        return 0.0


def _group(user: str | None) -> int | None:
    if not user:
        return None
    import pwd

    return pwd.getpwnam(user).pw_gid


def main() -> None:
    start_worker(json.loads(sys.argv[1]))
    out = sys.stdout
    sys.stdout = sys.stderr  # only results on the real stdout
    for line in sys.stdin:
        job = Job(**json.loads(line))
        try:
            result = run_job(job)
        except Exception as error:  # noqa: BLE001 - reported for this submission only
            result = {"key": job.key, "error": f"grading failed: {type(error).__name__}: {error}"}
        out.write(json.dumps(result) + "\n")
        out.flush()
    from . import execute

    if execute._template is not None:
        execute._template.close()


if __name__ == "__main__":
    main()
