"""hub_config/child_of_hub.py: a service started through it ends when the process that started it
is killed (kill -9 of the hub), and runs its command in place of itself."""

import subprocess
import sys
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[2]

# A stand-in hub: starts a service through the wrapper, prints its pid, then waits to be killed.
PARENT = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-m", "hub_config.child_of_hub", "sleep", "300"])
print(child.pid, flush=True)
time.sleep(300)
"""


def test_a_service_ends_with_the_hub_that_started_it():
    hub = subprocess.Popen([sys.executable, "-c", PARENT], cwd=REPO, stdout=subprocess.PIPE, text=True)
    service = psutil.Process(int(hub.stdout.readline()))
    deadline = time.monotonic() + 30
    while service.cmdline()[:1] != ["sleep"]:  # exec'd in place: same pid, the command's own name
        assert time.monotonic() < deadline, f"the wrapper did not exec sleep: {service.cmdline()}"
        time.sleep(0.05)
    hub.kill()  # SIGKILL: no clean shutdown stops its services
    hub.wait()
    psutil.wait_procs([service], timeout=10)
    assert not service.is_running() or service.status() == psutil.STATUS_ZOMBIE


def test_no_command_is_a_usage_error():
    done = subprocess.run(
        [sys.executable, "-m", "hub_config.child_of_hub"], cwd=REPO, capture_output=True, text=True
    )
    assert done.returncode != 0 and "usage:" in done.stderr
