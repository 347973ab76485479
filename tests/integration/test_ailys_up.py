"""`ailys up` as an admin runs it: the site comes up, prints its logins, and Ctrl-C (or SIGTERM)
stops the learner servers, the hub, its services and the proxy, leaving nothing behind."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from tests.services.hub import RunningHub, course, wait_until

pytestmark = [pytest.mark.hub]

AILYS = str(Path(sys.executable).parent / "ailys")


def site_processes(hub: RunningHub, up: psutil.Process) -> list[psutil.Process]:
    """The hub, its services and the proxy: everything `ailys up` started, in their own sessions."""
    found = []
    for p in psutil.process_iter(["cmdline", "environ"]):
        try:
            text = " ".join(p.info["cmdline"] or [])
            env = p.info["environ"] or {}
        except psutil.Error:
            continue
        if p.pid != up.pid and (
            str(hub.site_file) in text
            or env.get("AILYS_SITE") == str(hub.site_file)
            or f"--port={hub.catalogue.site.listen.port} " in text + " "
        ):
            found.append(p)
    return found


@pytest.mark.parametrize("how", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_up_then_stop_leaves_nothing_running(how):
    hub = RunningHub([course("algo", ["prof-up"], ["ulla"])])
    # Started as from a script (`ailys up &`): SIGINT ignored, which every child would inherit.
    up = subprocess.Popen(
        [AILYS, "up", "--site", str(hub.site_file)],
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    try:
        lines = []
        for line in up.stdout:
            lines.append(line)
            if "site admin" in line:  # the last of the printed logins
                break
        text = "".join(lines)
        assert f"is up: {hub.url}/" in text and "ulla" in text and "hubadmin" in text, text
        ulla = hub.login("ulla")
        hub.spawn(ulla, "ulla")
        started = site_processes(hub, psutil.Process(up.pid)) + hub.learner_processes()
        assert len(started) >= 4, started  # proxy, hub, its services, ulla's server
        up.send_signal(how)
        assert up.wait(timeout=90) == 0
        left = [p for p in started if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
        assert left == [], [" ".join(p.cmdline())[:80] for p in left]
    finally:
        if up.poll() is None:
            up.kill()
        wait_until(lambda: up.poll() is not None, 10, "ailys up to end")
        hub.stop()
