"""A real Prometheus (Debian's `prometheus` package) scraping the hub and our services.

It runs in a folder of its own (its prometheus.yml, its bearer token file 0600, its TSDB), listens
on 127.0.0.1 on a free port, scrapes every second with the token given, and is stopped by the PID
it was started with.

    with Prometheus({"hub": "http://127.0.0.1:8000/hub/metrics"}, token) as prom:
        prom.wait_for('ailys_exchange_submissions_total{course="x"}', lambda v: v >= 3, 30)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import yaml

from tests.services import free_port

BINARY = shutil.which("prometheus") or "/usr/bin/prometheus"


def available() -> bool:
    return os.access(BINARY, os.X_OK)


class Prometheus:
    def __init__(self, targets: dict[str, str], token: str, interval: str = "1s"):
        """``targets``: job name -> the URL of its metrics (http://host:port/path)."""
        self.root = Path(tempfile.mkdtemp(prefix="ailys-prometheus-"))
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        token_file = self.root / "token"
        token_file.write_text(token)
        token_file.chmod(0o600)
        jobs = []
        for job, target in targets.items():
            u = urlparse(target)
            jobs.append(
                {
                    "job_name": job,
                    "metrics_path": u.path,
                    "scheme": u.scheme,
                    "authorization": {"type": "Bearer", "credentials_file": str(token_file)},
                    "static_configs": [{"targets": [u.netloc]}],
                }
            )
        config = {
            "global": {
                "scrape_interval": interval,
                "scrape_timeout": interval,
                "evaluation_interval": interval,
            },
            "scrape_configs": jobs,
        }
        (self.root / "prometheus.yml").write_text(yaml.safe_dump(config))
        self.proc: subprocess.Popen | None = None

    def start(self) -> Prometheus:
        log = open(self.root / "prometheus.log", "wb")  # noqa: SIM115 (kept open for the process)
        self.proc = subprocess.Popen(
            [
                BINARY,
                f"--config.file={self.root / 'prometheus.yml'}",
                f"--storage.tsdb.path={self.root / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--log.level=warn",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.root,
        )
        deadline = time.monotonic() + 60
        while not self._ready():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"Prometheus did not start:\n{self.log()[-2000:]}")
            time.sleep(0.2)
        return self

    def _ready(self) -> bool:
        try:
            return httpx.get(f"{self.url}/-/ready", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    def log(self) -> str:
        path = self.root / "prometheus.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def query(self, expr: str) -> list[dict]:
        r = httpx.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        r.raise_for_status()
        return r.json()["data"]["result"]

    def value(self, expr: str) -> float | None:
        """The expression's one value now (None when it has no series)."""
        result = self.query(expr)
        if len(result) > 1:
            raise AssertionError(f"{expr} has {len(result)} series, not one: {result}")
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, expr: str, condition, timeout: float) -> float | None:
        """Poll until ``condition(value)`` holds; fail with the last value and the targets' state."""
        deadline = time.monotonic() + timeout
        while True:
            value = self.value(expr)
            if value is not None and condition(value):
                return value
            if time.monotonic() > deadline:
                targets = httpx.get(f"{self.url}/api/v1/targets", timeout=10).json()["data"]["activeTargets"]
                health = [(t["labels"].get("job"), t["health"], t.get("lastError")) for t in targets]
                raise TimeoutError(f"{expr} is {value} after {timeout} s; targets: {health}")
            time.sleep(0.5)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> Prometheus:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
