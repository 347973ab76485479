"""Idle reclaim, for real: the hub's own idle culler (a short timeout) stops a learner's idle
server, the footprint service sees it leave idle, and `ailys energy report --course C` shows the
core-hours the stop gave back for that course (its cores for the rest of the culler's max_age)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.services.hub import RunningHub, course, wait_until

pytestmark = pytest.mark.hub

CHECKOUT = Path(__file__).parents[2]
COURSE, LEARNER = "e14-idle", "e14-sleepy"
MAX_AGE = 3600  # the limit a stop is counted against on a local site (no walltime)


def report(hub) -> str:
    argv = [sys.executable, "-m", "hub_config.cli", "energy", "report", "--site", str(hub.site_file)]
    done = subprocess.run(
        [*argv, "--course", COURSE], capture_output=True, text=True, cwd=CHECKOUT, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_culler_stops_an_idle_server_and_the_report_shows_what_it_reclaimed():
    site = {
        "culler": {"timeout": "10s", "every": "5s", "max_age": f"{MAX_AGE}s"},
        "energy": {"service": {"sample_every": "1s"}},
    }
    hub = RunningHub([course(COURSE, ["e14-prof"], [LEARNER])], site=site).start()
    try:
        client = hub.login(LEARNER)
        hub.spawn(client, LEARNER)
        wait_until(lambda: not hub.server_ready(LEARNER), 120, "the culler to stop the idle server", every=1)
        line = wait_until(
            lambda: next(
                (x for x in report(hub).splitlines() if x.startswith(f"{COURSE}: the culler")), None
            ),
            30,
            "the reclaimed core-hours in the report",
            every=1,
        )
        stops, hours = (
            line.split("stopped ")[1].split(" idle")[0],
            float(line.split("reclaimed ")[1].split()[0]),
        )
        assert stops == "1", line
        # one core for the rest of the hour, less the seconds the session lived (printed to 0.01)
        assert 0.9 < hours <= 1.0, line
    finally:
        hub.stop()
