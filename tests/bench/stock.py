"""What the benches' stock sides share: a stock JupyterHub started from a hand-written config."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import httpx
import psutil

from tests.services.hub import wait_until

BIN = Path(sys.executable).parent


def start_stock_hub(
    config: Path, cwd: Path, log_file: Path, url: str, timeout: float = 60
) -> subprocess.Popen:
    """``jupyterhub -f config``, its output appended to ``log_file``; returns once ``url``'s API
    answers, or raises if the hub exits first."""
    with open(log_file, "ab") as log:
        proc = subprocess.Popen(
            [str(BIN / "jupyterhub"), "-f", str(config)], cwd=cwd, stdout=log, stderr=subprocess.STDOUT
        )

    def answers() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"the stock hub exited; see {log_file}")
        try:
            return httpx.get(f"{url}/hub/api/", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(answers, timeout, f"the stock hub on {url}")
    except BaseException:  # a hub that never answered is stopped, with the proxy it started
        stop_stock_hub(proc)
        raise
    return proc


def stop_stock_hub(proc: subprocess.Popen | None) -> None:
    """SIGTERM the stock hub (SIGKILL after 30 s), then kill what it started: its proxy, and its
    servers if the hub left any."""
    if proc is None or proc.poll() is not None:
        return
    children = psutil.Process(proc.pid).children(recursive=True)
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
    for child in children:
        try:
            child.kill()
        except psutil.NoSuchProcess:
            pass
