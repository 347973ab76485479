"""Real services that tests start and stop by PID: the hub and its proxy (hub.py), a Slurm
cluster (slurm.py), PostgreSQL (postgres.py), podman containers (podman.py). The small helpers
they share are here."""

import socket
from pathlib import Path


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` ("" for every address)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def log_tail(path: Path, lines: int = 30) -> str:
    """The end of a daemon's log, for an error message."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"({path} was not written)"
    return "\n".join(text[-lines:]) or f"({path} is empty)"
