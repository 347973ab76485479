"""Autograde on submit (practice work): the exchange grades a new submission of an assignment
marked `autograde_on_submit: true` in course.yaml, and releases its feedback to the learner.

The queue is durable: a submission to such an assignment is stored with the marker
``autograde.pending`` in the same rename as its files (storage.py), and the marker goes only once
it is graded (or left for the instructor). At start the service resumes every pending marker
(``resume``), so a kill -9 of the exchange loses no grading; a grading cut short is done again.

One worker per course: the course's gradebook has one writer at a time, as with `ailys grade`
(grading/autograde/on_submit.py). It takes what is waiting in one run (at most one submission per
learner and assignment, so a burst shares the sandbox workers' start), sandboxed like any autograde
(grading/autograde/sandbox.py), in the course's grading folder (grading/courses.py), so the
instructor sees the result in the grading interface like any other. A submission that cannot be
graded is logged and left for the instructor; the learner's submission is never touched.
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

from . import metrics
from .storage import ExchangeStore

GRADER = "autograde-on-submit"  # released_by of the feedback it releases


def wanted(course: Course, assignment: str) -> bool:
    return any(a.name == assignment and a.autograde_on_submit for a in course.assignments)


def next_batch(waiting: list[dict]) -> list[dict]:
    """The oldest waiting submission of each (assignment, learner), of the oldest one's assignment."""
    if not waiting:
        return []
    assignment, seen, batch = waiting[0]["assignment_id"], set(), []
    for meta in waiting:
        if meta["assignment_id"] == assignment and meta["student_id"] not in seen:
            seen.add(meta["student_id"])
            batch.append(meta)
    return batch


class PracticeGrading:
    def __init__(self, store: ExchangeStore, catalogue: LiveCatalogue, log: logging.Logger):
        self.store, self.catalogue, self.log = store, catalogue, log
        self.waiting: dict[str, list[dict]] = {}  # per course, oldest first
        self.wake: dict[str, asyncio.Event] = {}
        self.workers: dict[str, asyncio.Task] = {}

    def resume(self) -> int:
        """Queue every submission still marked pending (left by an earlier run); how many."""
        pending = self.store.pending_autograde()
        for meta in pending:
            self._queue(meta)
        # Said at every start, 0 included: an admin (and the fault test) sees the queue was read.
        self.log.info("autograde on submit: resuming %d pending submissions", len(pending))
        return len(pending)

    def submitted(self, course: Course, assignment: str, learner: str, meta: dict) -> bool:
        """Queue a new submission if its assignment is graded on submit; True if it is (a retried
        submission, ``replayed``, was queued by its first request)."""
        if not wanted(course, assignment):
            return False
        if not meta.get("replayed"):
            self._queue(meta)
        return True

    def _queue(self, meta: dict) -> None:
        slug = meta["course_id"]
        self.waiting.setdefault(slug, []).append(meta)
        metrics.QUEUE_DEPTH.labels(slug).set(len(self.waiting[slug]))
        self.wake.setdefault(slug, asyncio.Event()).set()
        if slug not in self.workers:
            self.workers[slug] = asyncio.get_running_loop().create_task(self._work(slug))

    async def _work(self, slug: str) -> None:
        while True:
            await self.wake[slug].wait()
            self.wake[slug].clear()
            while batch := next_batch(self.waiting[slug]):
                assignment = batch[0]["assignment_id"]
                try:
                    await asyncio.to_thread(self.grade, slug, assignment, batch)
                except Exception:  # one bad run never stops the course's queue
                    self.log.exception("autograde on submit of %s/%s failed", slug, assignment)
                    metrics.GRADE_FAILURES.labels(slug).inc(len(batch))
                    for meta in batch:
                        self._done(meta)
                for meta in batch:
                    self.waiting[slug].remove(meta)
                metrics.QUEUE_DEPTH.labels(slug).set(len(self.waiting[slug]))

    def _done(self, meta: dict) -> None:
        self.store.autograded(meta["course_id"], meta["assignment_id"], meta["student_id"], meta["id"])
        arrived = dt.datetime.fromisoformat(meta["submitted_at"])
        metrics.WAIT.labels(meta["course_id"]).observe((dt.datetime.now(dt.UTC) - arrived).total_seconds())

    def grade(self, slug: str, assignment: str, batch: list[dict]) -> None:
        from ..autograde.on_submit import (  # nbgrader: only when used
            grade_submissions,
            settings_from_catalogue,
        )
        from ..courses import course_dir

        catalogue = self.catalogue.current()
        by_learner = {meta["student_id"]: meta for meta in batch}
        with tempfile.TemporaryDirectory(prefix="ailys-practice-") as tmp:
            folders = {}
            for learner, meta in by_learner.items():
                folders[learner] = Path(tmp) / learner
                for path, data in self.store.submission_files(slug, assignment, learner, meta["id"]).items():
                    target = folders[learner] / path
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(data)
                # the exchange's time of arrival, as nbgrader's collect writes it (never one the learner
                # sent): the gradebook's lateness, with the learner's extension, reads it
                folders[learner].mkdir(parents=True, exist_ok=True)
                (folders[learner] / "timestamp.txt").write_text(meta["timestamp"])
            results = grade_submissions(
                course_dir(catalogue, slug),
                assignment,
                folders,
                settings=settings_from_catalogue(catalogue, slug),
                course_id=slug,
                workers=catalogue.site.grading.workers,
                catalogue=catalogue,  # their energy records (footprint/)
            )
        for result in results:
            meta = by_learner.pop(result.student)
            self.release(slug, assignment, meta, result)
            self._done(meta)
        for learner, meta in by_learner.items():  # no outcome at all: say so, leave it to the instructor
            self.log.warning("autograde on submit of %s/%s by %s: no outcome", slug, assignment, learner)
            metrics.GRADE_FAILURES.labels(slug).inc()
            self._done(meta)

    def release(self, slug: str, assignment: str, meta: dict, result) -> None:
        learner = meta["student_id"]
        files = (
            {p.name: p.read_bytes() for p in sorted(result.feedback_dir.glob("*.html"))}
            if result.feedback_dir
            else {}
        )
        if not files:
            metrics.GRADE_FAILURES.labels(slug).inc()
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
            slug, assignment, learner, meta["timestamp"], files, by=GRADER, now=dt.datetime.now(dt.UTC)
        )
        metrics.GRADED.labels(slug).inc()
        self.log.info(
            "autograded on submit: %s/%s by %s: %s %g/%g, feedback released",
            slug,
            assignment,
            learner,
            result.status,
            result.score,
            result.max_score,
        )
