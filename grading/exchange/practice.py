"""Autograde on submit (practice work): the exchange grades a new submission of an assignment
marked `autograde_on_submit: true` in course.yaml, and releases its feedback to the learner.

One queue and one worker per course: the course's gradebook has one writer at a time, as with
`ailys grade` (grading/autograde/on_submit.py). Grading runs in a thread, sandboxed like any
autograde (grading/autograde/sandbox.py), in the course's grading folder (grading/courses.py), so
the instructor sees the result in the grading interface like any other. A submission that cannot
be graded is logged and left for the instructor; the learner's submission is never touched.
This process holds the exchange's own hub token: the grading workers it starts do not (they start
from the allow-list environment of grading/autograde/sandbox.py), nor do their kernels.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import tempfile
from pathlib import Path

from hub_config.catalogue import LiveCatalogue
from hub_config.schema import Course

from .storage import ExchangeStore

GRADER = "autograde-on-submit"  # released_by of the feedback it releases


def wanted(course: Course, assignment: str) -> bool:
    return any(a.name == assignment and a.autograde_on_submit for a in course.assignments)


class PracticeGrading:
    def __init__(self, store: ExchangeStore, catalogue: LiveCatalogue, log: logging.Logger):
        self.store, self.catalogue, self.log = store, catalogue, log
        self.queues: dict[str, asyncio.Queue] = {}
        self.workers: dict[str, asyncio.Task] = {}

    def submitted(self, course: Course, assignment: str, learner: str, meta: dict) -> bool:
        """Queue a new submission if its assignment is graded on submit; True if queued."""
        if not wanted(course, assignment):
            return False
        queue = self.queues.setdefault(course.slug, asyncio.Queue())
        if course.slug not in self.workers:
            self.workers[course.slug] = asyncio.get_running_loop().create_task(self._work(course.slug, queue))
        queue.put_nowait((assignment, learner, meta["timestamp"], meta["id"]))
        return True

    async def _work(self, slug: str, queue: asyncio.Queue) -> None:
        while True:
            assignment, learner, timestamp, sub_id = await queue.get()
            try:
                await asyncio.to_thread(self.grade, slug, assignment, learner, timestamp, sub_id)
            except Exception:  # one bad submission never stops the course's queue
                self.log.exception("autograde on submit of %s/%s by %s failed", slug, assignment, learner)

    def grade(self, slug: str, assignment: str, learner: str, timestamp: str, sub_id: str) -> None:
        from ..autograde.on_submit import (  # nbgrader: only when used
            grade_submission,
            settings_from_catalogue,
        )
        from ..courses import course_dir

        catalogue = self.catalogue.current()
        with tempfile.TemporaryDirectory(prefix="ailys-practice-") as tmp:
            for path, data in self.store.submission_files(slug, assignment, learner, sub_id).items():
                target = Path(tmp) / path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            result = grade_submission(
                course_dir(catalogue, slug),
                assignment,
                learner,
                tmp,
                settings=settings_from_catalogue(catalogue, slug),
                course_id=slug,
            )
        files = (
            {p.name: p.read_bytes() for p in sorted(result.feedback_dir.glob("*.html"))}
            if result.feedback_dir
            else {}
        )
        if not files:
            self.log.warning(
                "autograde on submit of %s/%s by %s: %s, no feedback to release (%s)",
                slug,
                assignment,
                learner,
                result.status,
                "; ".join(result.reasons),
            )
            return
        self.store.release_feedback(
            slug, assignment, learner, timestamp, files, by=GRADER, now=dt.datetime.now(dt.UTC)
        )
        self.log.info(
            "autograded on submit: %s/%s by %s: %s %g/%g, feedback released",
            slug,
            assignment,
            learner,
            result.status,
            result.score,
            result.max_score,
        )
