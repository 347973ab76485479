"""Secrets the hub's parts share, made once per data folder and never kept in git.

<data_dir>/secrets/ is mode 0700; each file is 0600. The cookie secret is made by
JupyterHub itself at the path given to it.
"""

from __future__ import annotations

import dataclasses
import os
import secrets as _random
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class Secrets:
    folder: Path
    proxy_token: str  # between the hub and the proxy's REST API
    sync_token: str  # the course-sync service's hub API token
    cli_token: str  # `ailys down`: may only shut the hub down
    prometheus_token: str = ""  # Prometheus's bearer token, reads metrics only (appliers/metrics.py)

    @property
    def cookie_secret_file(self) -> Path:
        return self.folder / "jupyterhub_cookie_secret"

    @property
    def demo_logins_file(self) -> Path:
        return self.folder / "demo-logins.txt"


def _read_or_make(path: Path) -> str:
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    value = _random.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value


def load_secrets(data_dir: Path) -> Secrets:
    folder = Path(data_dir) / "secrets"
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o700)
    return Secrets(
        folder,
        proxy_token=_read_or_make(folder / "proxy-token"),
        sync_token=_read_or_make(folder / "sync-token"),
        cli_token=_read_or_make(folder / "cli-token"),
        prometheus_token=_read_or_make(folder / "prometheus-token"),
    )


def read_demo_logins(path: Path) -> dict[str, str]:
    """``username password`` per line, as ensure_demo_logins writes them."""
    pairs = (line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())
    return {name: password for name, password in pairs}


def ensure_demo_logins(secrets: Secrets, people: list[str]) -> dict[str, str]:
    """A generated password for each person who has none yet; the file keeps them (0600)."""
    path = secrets.demo_logins_file
    logins = read_demo_logins(path) if path.exists() else {}
    for name in people:
        logins.setdefault(name, _random.token_urlsafe(9))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.writelines(f"{name} {password}\n" for name, password in logins.items())
    return logins
