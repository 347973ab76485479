"""`ailys backup` while a real hub runs and writes, then `ailys restore` onto a fresh site: every
submission comes back in the learner's assignment list, every grade in `ailys grades export`.

A real hub, its exchange, the course's grading service (autograde on submit: the sandboxed
grading of each submission writes the gradebook), learners' own servers. The hub database is
SQLite (its online backup) or a real PostgreSQL server (pg_dump, then pg_restore into another).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import nbformat
import pytest

from tests.conftest import need
from tests.grading_hostile.build import grading_account
from tests.integration.test_exchange import Learner, source_notebook, wait_for_exchange
from tests.integration.test_grading_formgrader import Instructor, grading_hub, wait_for_grading
from tests.services import free_port
from tests.services import postgres as pg
from tests.services.hub import RunningHub, course, wait_until

pytestmark = pytest.mark.hub

AILYS = str(Path(sys.executable).parent / "ailys")
SLUG, PROF, GRADER, QUIZ = "bk-course", "bk-prof", "bk-grader", "quiz"
LEARNERS = ["bk-ann", "bk-ben"]
COURSE = course(SLUG, [PROF], LEARNERS, assignments=[{"name": QUIZ, "autograde_on_submit": True}])
PROBE = "CREATE TABLE IF NOT EXISTS backup_probe (batch INTEGER, n INTEGER)"


def ailys(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run([AILYS, *args], capture_output=True, text=True, timeout=300, check=False)
    if check and done.returncode:
        raise AssertionError(f"ailys {' '.join(args)}: {done.returncode}\n{done.stdout}\n{done.stderr}")
    return done


class Writer:
    """Writes two rows per transaction into the hub database until stopped: a backup that caught a
    transaction half-done would hold a batch of one row."""

    def __init__(self, connect):
        self.connect, self.batches = connect, 0
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        db = self.connect()
        cur = db.cursor()
        cur.execute(PROBE)
        while not self.stopped.is_set():
            cur.execute("BEGIN")
            cur.execute(f"INSERT INTO backup_probe VALUES ({self.batches}, 1)")
            cur.execute(f"INSERT INTO backup_probe VALUES ({self.batches}, 2)")
            cur.execute("COMMIT")
            self.batches += 1
            self.stopped.wait(0.005)  # paced, so the hub's own writes get their turn
        db.close()


def sqlite_connect(path: Path):
    return lambda: sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)


def submitted(learner: Learner) -> list[str]:
    """The learner's submissions as their JupyterLab's assignment list shows them."""
    listed = learner.action("fetch_feedback", SLUG, QUIZ)["value"]
    return sorted(s["timestamp"] for a in listed if a["status"] == "submitted" for s in a["submissions"])


def graded(learner: Learner, count: int) -> bool:
    listed = learner.action("fetch_feedback", SLUG, QUIZ)["value"]
    subs = [s for a in listed if a["status"] == "submitted" for s in a["submissions"]]
    return len(subs) == count and all(s["has_local_feedback"] for s in subs)


def grades_csv(site_file: Path, out: Path) -> str:
    ailys("grades", "export", SLUG, "--out", str(out), "--site", str(site_file))
    return (out / f"{SLUG}-grades.csv").read_text()


@contextlib.contextmanager
def database(kind: str, output_dir: Path, name: str):
    """The site keys of the hub database, and a way to connect to it."""
    if kind == "sqlite":
        yield {}, None
        return
    need(pg.missing() is None, pg.missing() or "")
    with pg.PostgresServer(log=output_dir / f"postgres-{name}.log") as server:
        yield {"database_url": server.url}, server


@pytest.mark.parametrize("kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def test_backup_while_the_hub_writes_then_restore_onto_a_fresh_site(kind, tmp_path, output_dir):
    out = tmp_path / "backups"
    with database(kind, output_dir, "first") as (db_site, first_db):
        with grading_hub([COURSE], GRADER, {SLUG: QUIZ}, free_port(), f"test_backup-{kind}", db_site) as hub:
            prof = Instructor(hub, PROF, SLUG)
            prof.post(f"assignment/{QUIZ}/assign")
            prof.post(f"assignment/{QUIZ}/release")
            learners = {name: Learner(hub, name) for name in LEARNERS}
            for learner in learners.values():
                learner.action("fetch", SLUG, QUIZ)
                learner.answer_and_submit(SLUG, QUIZ, "x = 42")
            learners["bk-ann"].answer_and_submit(
                SLUG, QUIZ, "x = 41"
            )  # a second, worse submission: both are kept
            counts = {"bk-ann": 2, "bk-ben": 1}
            for name, learner in learners.items():
                wait_until(
                    lambda ln=learner, n=counts[name]: graded(ln, n), 120, f"{name}'s feedback", every=2
                )
            before = {name: submitted(learner) for name, learner in learners.items()}
            grades_before = grades_csv(hub.site_file, tmp_path / "grades-before")
            assert "bk-ann" in grades_before and "bk-ben" in grades_before

            connect = first_db.connect if first_db else sqlite_connect(hub.data / "jupyterhub.sqlite")
            writer = Writer(connect)
            writer.thread.start()
            wait_until(lambda: writer.batches > 20, 30, "the writer's first transactions")
            at_start = writer.batches
            started = time.monotonic()
            made = ailys("backup", "--site", str(hub.site_file), "--out", str(out))
            seconds = time.monotonic() - started
            at_end = writer.batches
            writer.stopped.set()
            writer.thread.join(10)
            assert at_end > at_start, "the writer wrote nothing while the backup ran"
            [archive] = out.glob("test-*.tar.zst")
            assert stat.S_IMODE(archive.stat().st_mode) == 0o600
            assert archive.stat().st_uid == os.getuid()  # the hub account's (the hub runs as us)
            print(f"backup ({kind}): {archive.stat().st_size} bytes in {seconds:.2f} s\n{made.stdout}")

            # the running hub's own site is never restored over
            refused = ailys("restore", str(archive), "--site", str(hub.site_file), "--force", check=False)
            assert refused.returncode == 1 and "is running" in refused.stderr
            passwords = dict(hub.passwords)

    with database(kind, output_dir, "second") as (db_site, second_db), grading_account(GRADER):
        fresh = RunningHub([COURSE], site={"grading": {"user": GRADER}, **db_site}, start_timeout=180)
        try:
            folder = fresh.root / "courses" / SLUG / "source" / QUIZ  # the course's git folder
            folder.mkdir(parents=True)
            nbformat.write(source_notebook(), folder / f"{QUIZ}.ipynb")
            done = ailys("restore", str(archive), "--site", str(fresh.site_file))
            for part in ("hub", "exchange", "grading", f"gradebook-{SLUG}"):
                assert f"restored {part} " in done.stdout, done.stdout
            assert stat.S_IMODE((fresh.data / "exchange").stat().st_mode) == 0o700

            # the snapshot is one consistent state: every transaction of the writer whole
            probe = second_db.connect() if second_db else sqlite_connect(fresh.data / "jupyterhub.sqlite")()
            cur = probe.cursor()
            cur.execute("SELECT batch, count(*) FROM backup_probe GROUP BY batch")
            batches = dict(cur.fetchall())
            probe.close()
            assert set(batches.values()) == {2}
            assert at_start <= len(batches) <= at_end

            fresh.passwords.update(passwords)  # their passwords came back with the hub database
            fresh.start()
            wait_for_exchange(fresh)
            wait_for_grading(fresh, SLUG)
            for name in LEARNERS:
                assert submitted(Learner(fresh, name)) == before[name]
            assert grades_csv(fresh.site_file, tmp_path / "grades-after") == grades_before
        finally:
            fresh.stop()
