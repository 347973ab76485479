"""How the proxy and the hub are started: one place for `ailys up` and the test fixtures."""

from __future__ import annotations

import dataclasses
import os
import pwd
import subprocess
import sys
import time
from pathlib import Path

import httpx

from . import names
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
    # A Unix account to run as (a root caller only): the production hub is not root. None: ours.
    user: str | None = None


def start(launch: Launch) -> subprocess.Popen:
    """Start a launch in the background, its output appended to its log."""
    launch.log.parent.mkdir(parents=True, exist_ok=True)
    env, account = launch.env, {}
    if launch.user is not None:
        pw = pwd.getpwnam(launch.user)
        # That account's uid and groups (as at login, none of root's), and its own HOME.
        groups = os.getgrouplist(pw.pw_name, pw.pw_gid)
        account = {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": groups}
        env = {**env, "HOME": pw.pw_dir, "USER": pw.pw_name, "LOGNAME": pw.pw_name}
    with open(launch.log, "ab") as log:
        # A session of its own: Ctrl-C reaches `ailys up` alone, which then stops the learner
        # servers through the hub before the hub and the proxy (a SIGINT would stop only the hub).
        return subprocess.Popen(
            launch.argv,
            env=env,
            cwd=launch.cwd,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            **account,
        )


def proxy_launch(catalogue: Catalogue, secrets: Secrets) -> Launch:
    listen = catalogue.site.listen
    argv = [
        str(BIN / "configurable-http-proxy"),
        f"--ip={listen.ip}",
        f"--port={listen.port}",
        "--api-ip=127.0.0.1",
        f"--api-port={listen.proxy_api_port}",
        f"--default-target=http://127.0.0.1:{listen.hub_port}",
        f"--error-target=http://127.0.0.1:{listen.hub_port}{listen.base_url}hub/error",
        "--log-level=warn",
    ]
    env = {**os.environ, "CONFIGPROXY_AUTH_TOKEN": secrets.proxy_token}
    return Launch(argv, env, catalogue.data_dir, catalogue.data_dir / "logs" / "proxy.log")


def hub_launch(catalogue: Catalogue) -> Launch:
    argv = [str(BIN / "jupyterhub"), "-f", str(HUB_CONFIG)]
    env = {**os.environ, "AILYS_SITE": str(catalogue.site_file)}
    return Launch(argv, env, catalogue.data_dir, catalogue.data_dir / "logs" / "hub.log")


def podman_socket(catalogue: Catalogue) -> Path:
    return catalogue.data_dir / catalogue.site.spawner.docker.socket


def podman_launch(catalogue: Catalogue, podman_env: dict[str, str]) -> Launch:
    """podman's Docker-compatible service for a docker site's containers, on the site's socket,
    with the image store's config and storage (``podman_env``: images.store.podman_env). It only
    serves the API: containers outlive it, and a restarted service finds them in the store."""
    socket = podman_socket(catalogue)
    argv = ["podman", "system", "service", "--time=0", f"unix://{socket}"]
    env = {**os.environ, **podman_env}
    return Launch(argv, env, catalogue.data_dir, catalogue.data_dir / "logs" / "podman.log")


def podman_answers(socket: Path) -> bool:
    try:
        transport = httpx.HTTPTransport(uds=str(socket))
        with httpx.Client(transport=transport, timeout=2) as client:
            return client.get("http://podman/_ping").status_code == 200
    except (httpx.HTTPError, OSError):
        return False


def wait_for_podman(socket: Path, timeout: float = 60, alive=lambda: True) -> None:
    """Wait until podman's service answers on ``socket``; raise if ``alive()`` turns false first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("podman's service exited while starting")
        if podman_answers(socket):
            return
        time.sleep(0.05)
    raise TimeoutError(f"podman's service did not answer on {socket} within {timeout} s")


def hub_url(catalogue: Catalogue) -> str:
    listen = catalogue.site.listen
    return f"http://{listen.ip}:{listen.port}{listen.base_url}"


def service_prefixes(catalogue: Catalogue, secrets: Secrets) -> set[str]:
    """Proxy routes of the hub's services that have a URL: the hub adds them once all have started."""
    from traitlets.config import Config

    from .appliers import apply_all

    services = apply_all(Config(), catalogue, secrets).JupyterHub.services
    base_url = catalogue.site.listen.base_url
    return {names.service_prefix(s["name"], base_url) for s in services if s.get("url")}


def wait_for_hub(catalogue: Catalogue, secrets: Secrets, timeout: float = 60, alive=lambda: True) -> None:
    """Wait until the hub answers through the proxy and has started every service (their routes are
    in the proxy: the hub adds them last); raise if ``alive()`` turns false first. A hub stopped
    while still starting services would leave the late ones running."""
    url = hub_url(catalogue) + "hub/api/"
    routes_url = f"http://127.0.0.1:{catalogue.site.listen.proxy_api_port}/api/routes"
    wanted = service_prefixes(catalogue, secrets)
    deadline = time.monotonic() + timeout
    missing: set[str] | None = None  # None: the hub itself has not answered yet
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the hub exited while starting")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                routes = httpx.get(
                    routes_url, headers={"Authorization": f"token {secrets.proxy_token}"}, timeout=2
                )
                missing = wanted - {r.rstrip("/") + "/" for r in routes.json()}
                if not missing:
                    return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    if missing is None:
        raise TimeoutError(f"the hub did not answer at {url} within {timeout} s")
    raise TimeoutError(
        f"the hub answers at {url}, but within {timeout} s it had not started "
        f"{', '.join(sorted(missing))} (no proxy route yet; see the hub's log)"
    )
