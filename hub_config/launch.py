"""How the proxy and the hub are started: one place for `ailys up` and the test fixtures."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from .catalogue import Catalogue
from .secrets import Secrets

HUB_CONFIG = Path(__file__).parent / "jupyterhub_config.py"
BIN = Path(sys.executable).parent


@dataclasses.dataclass(frozen=True)
class Launch:
    argv: list[str]
    env: dict[str, str]
    cwd: Path
    log: Path


def start(launch: Launch) -> subprocess.Popen:
    """Start a launch in the background, its output appended to its log."""
    launch.log.parent.mkdir(parents=True, exist_ok=True)
    with open(launch.log, "ab") as log:
        # A session of its own: Ctrl-C reaches `ailys up` alone, which then stops the learner
        # servers through the hub before the hub and the proxy (a SIGINT would stop only the hub).
        return subprocess.Popen(
            launch.argv, env=launch.env, cwd=launch.cwd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )


def proxy_launch(catalogue: Catalogue, secrets: Secrets) -> Launch:
    listen = catalogue.site.listen
    argv = [
        str(BIN / "configurable-http-proxy"),
        f"--ip={listen.ip}", f"--port={listen.port}",
        "--api-ip=127.0.0.1", f"--api-port={listen.proxy_api_port}",
        f"--default-target=http://127.0.0.1:{listen.hub_port}",
        f"--error-target=http://127.0.0.1:{listen.hub_port}{listen.base_url}hub/error",
        "--log-level=warn",
    ]  # fmt: skip
    env = {**os.environ, "CONFIGPROXY_AUTH_TOKEN": secrets.proxy_token}
    return Launch(argv, env, catalogue.data_dir, catalogue.data_dir / "logs" / "proxy.log")


def hub_launch(catalogue: Catalogue) -> Launch:
    argv = [str(BIN / "jupyterhub"), "-f", str(HUB_CONFIG)]
    env = {**os.environ, "AILYS_SITE": str(catalogue.site_file)}
    return Launch(argv, env, catalogue.data_dir, catalogue.data_dir / "logs" / "hub.log")


def hub_url(catalogue: Catalogue) -> str:
    listen = catalogue.site.listen
    return f"http://{listen.ip}:{listen.port}{listen.base_url}"


def wait_for_hub(catalogue: Catalogue, timeout: float = 60, alive=lambda: True) -> None:
    """Wait until the hub answers through the proxy; raise if ``alive()`` turns false first."""
    url = hub_url(catalogue) + "hub/api/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the hub exited while starting")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"the hub did not answer at {url} within {timeout} s")
