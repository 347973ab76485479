"""The exchange under a kill -9: a submission is whole or absent after a kill mid-write, and 100
submissions sent within a minute by concurrent clients while the exchange is killed and restarted
by the hub are each recorded exactly once and each graded on submit (tests/bench/faults.py).
"""

from __future__ import annotations

import hashlib
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from grading.exchange.client import HubExchange
from grading.exchange.storage import ExchangeStore
from tests.bench.faults import burst_hub, run_exchange_fault

REPO = Path(__file__).resolve().parents[2]

WRITER = textwrap.dedent(
    """
    import datetime as dt, sys
    from grading.exchange.storage import ExchangeStore, Limits
    store = ExchangeStore(sys.argv[1])
    store.release("algo", "ps1", {"ps1.ipynb": b"{}"}, "prof", dt.datetime.now(dt.UTC), force=True)
    big = bytes(range(256)) * (40_000_000 // 256)
    print("ready", flush=True)
    for n in range(1000):
        store.submit("algo", "ps1", "ana", {"ps1.ipynb": sys.argv[2].encode(), "data.bin": big},
                     Limits(50_000_000, 60_000_000, 5), dt.datetime.now(dt.UTC), key=f"attempt-{n:019d}")
    """
)
NOTEBOOK = '{"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}'


def test_a_kill_9_mid_write_leaves_the_submission_whole_or_absent(tmp_path):
    root = tmp_path / "m17-exchange"
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(root), NOTEBOOK], stdout=subprocess.PIPE, cwd=REPO
    )
    assert writer.stdout.readline() == b"ready\n"
    deadline = time.monotonic() + 60
    while not list(root.glob("algo/.tmp/*/new/files/data.bin")):  # inside a 40 MB write (or its fsync)
        assert time.monotonic() < deadline and writer.poll() is None, "the writer never started a submission"
        time.sleep(0.001)
    writer.send_signal(signal.SIGKILL)
    writer.wait()
    assert any((root / "algo" / ".tmp").iterdir())  # it was killed mid-write: a staging folder is left
    after = ExchangeStore(root)  # what the restarted service sees
    assert not (root / "algo" / ".tmp").exists()
    subs = after.submissions("algo", "ps1", "ana")
    for meta in subs:  # every visible submission is whole: each file as its record says
        files = after.submission_files("algo", "ps1", "ana", meta["id"])
        assert {p: hashlib.sha256(d).hexdigest() for p, d in files.items()} == {
            p: f["sha256"] for p, f in meta["files"].items()
        }
    folders = list((root / "algo" / "submissions" / "ps1" / "ana").glob("*")) if subs else []
    assert len(folders) == len(subs)  # no folder without its record


# 100 submissions: 10 learners, 10 each; the third round to the quiz graded on submit (its grading is
# under way when the exchange is killed, halfway through), the others to ps1 (make bench-faults
# grades all of them)
LEARNERS, EACH, PRACTICE = 10, 10, {2}


@pytest.mark.hub
def test_100_submissions_in_a_minute_through_a_kill_are_recorded_once_and_graded():
    with burst_hub(LEARNERS) as (hub, url, tokens):
        figures = run_exchange_fault(
            hub.site_file,
            hub.data,
            url,
            tokens,
            EACH,
            window=30,
            kills=1,
            grade_timeout=240,
            practice_rounds=PRACTICE,
        )
        print(figures.line())
        # the hub restarted it (its poll, every 30 s, then the start) before a learner's client gives up
        assert figures.recovered_s and figures.recovered_s[0] < HubExchange.retry_for.default_value
        assert (figures.lost, figures.duplicated, figures.half_written) == (0, 0, 0), figures
        assert figures.recorded == figures.sent == EACH * LEARNERS
        assert figures.practice == LEARNERS and figures.graded == figures.practice, figures  # kill or not
        # The exchange started again read its queue from disk; whether a quiz submission was still
        # pending at the kill depends on the machine's speed (the queue's reopening: unit-tested).
        assert len(re.findall(r"resuming \d+ pending submissions", hub.log())) >= 2, (
            "no queue read at restart"
        )
