"""One Slurm array task: execute one submission, write its result for the grading process.

    python -m grading.autograde.task <jobs.json> <index>

Runs as the grading account on a node. The result goes to results/<index>.json beside jobs.json,
written under another name and renamed, so the grading process never reads half a file.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

from . import sandbox

MAX_STARTS = 2  # the first run, and one requeue after a node failure


def main(argv: list[str]) -> int:
    # The template starts first, while this process imports nbgrader. It preloads nothing but the
    # kernel's own modules: it forks one kernel only, so importing the course's libraries ahead
    # would save nothing, and cost whatever the notebook does not use.
    template = sandbox.Template(preload=[])
    from . import execute
    from .execute import Job, run_job

    execute._template = template
    jobs_file, index = Path(argv[0]), int(argv[1])
    job = Job(**json.loads(jobs_file.read_text())[index])
    result_file = jobs_file.parent / "results" / f"{index}.json"
    restarts = int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0)
    if restarts >= MAX_STARTS:
        result = {
            "key": job.key,
            "error": f"the grading task was lost to node failures {restarts} times; it is not tried again",
        }
    else:
        try:
            result = run_job(job)
        except Exception as error:  # noqa: BLE001 - reported for this submission only
            result = {
                "key": job.key,
                "error": f"grading failed on {os.uname().nodename}: {type(error).__name__}: {error}",
            }
    result.update(node=os.environ.get("SLURMD_NODENAME", ""), restarts=restarts)
    partial = result_file.with_suffix(".part")
    partial.write_text(json.dumps(result))
    partial.rename(result_file)
    template.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
