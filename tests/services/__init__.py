"""Real services that tests start and stop by PID: the hub and its proxy (hub.py), a Slurm
cluster (slurm.py), PostgreSQL (postgres.py), podman containers (podman.py), the directory
(ldap.py: slapd), an OpenID Connect provider (oidc.py: panva's oidc-provider on Node.js) and an
SMTP server (smtp.py: aiosmtpd). The small helpers they share are here."""

import contextlib
import os
import pwd
import socket
import subprocess
from pathlib import Path

import psutil

# Under pytest-xdist each worker picks ports in a range of its own, below the kernel's ephemeral
# range, in turn: a port one worker found free cannot be taken by the other before its service
# binds it, nor handed out twice by the same worker.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
_PORTS_PER_WORKER = 2000
_FIRST_PORT = 10000 + int(_WORKER.removeprefix("gw") or 0) * _PORTS_PER_WORKER
_next_port = _FIRST_PORT


def _bindable(host: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def free_ports(count: int, host: str = "127.0.0.1") -> int:
    """The first of ``count`` consecutive TCP ports free on ``host`` ("" for every address), for
    services numbered from a base port."""
    global _next_port
    for _ in range(_PORTS_PER_WORKER):
        if _WORKER:
            if _next_port + count > _FIRST_PORT + _PORTS_PER_WORKER:
                _next_port = _FIRST_PORT
            first, _next_port = _next_port, _next_port + count
        else:
            with socket.socket() as s:
                s.bind((host, 0))
                first = s.getsockname()[1]
        if all(_bindable(host, first + i) for i in range(count)):
            return first
    raise RuntimeError(f"no {count} consecutive free ports on {host or 'any address'}")


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` ("" for every address)."""
    return free_ports(1, host)


def log_tail(path: Path, lines: int = 30) -> str:
    """The end of a daemon's log, for an error message."""
    try:
        text = path.read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return f"({path} was not written)"
    return "\n".join(text[-lines:]) or f"({path} is empty)"


def unix_user(name: str, home_parent: Path) -> pwd.struct_passwd:
    """Create a Unix account with a home (mode 700) under ``home_parent``; see remove_unix_user."""
    home = home_parent / name
    argv = ["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh", "--user-group", name]
    subprocess.run(argv, check=True, capture_output=True)
    home.chmod(0o700)
    return pwd.getpwnam(name)


def remove_unix_user(user: pwd.struct_passwd) -> None:
    """Kill the processes of a test account (its jobs), by PID, then remove it and its home:
    userdel refuses an account that still runs something."""
    try:  # by name again: if it was removed meanwhile, its uid may already be another test's account
        user = pwd.getpwnam(user.pw_name)
    except KeyError:
        return
    mine = [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == user.pw_uid]
    for process in mine:
        with contextlib.suppress(psutil.Error):
            process.kill()
    psutil.wait_procs(mine, timeout=5)
    result = subprocess.run(["userdel", "--remove", user.pw_name], capture_output=True, text=True)
    # 6: removed meanwhile; 12: no home
    if result.returncode not in (0, 6, 12):
        raise RuntimeError(f"userdel {user.pw_name} failed: {result.stderr.strip()}")


@contextlib.contextmanager
def system_account(name: str):
    """A system account (useradd --system: uid below 1000, no home) for the test, removed after."""
    try:  # left by a run that died
        remove_unix_user(pwd.getpwnam(name))
    except KeyError:
        pass
    useradd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]
    subprocess.run(useradd, check=True, capture_output=True)
    account = pwd.getpwnam(name)
    try:
        yield account
    finally:
        remove_unix_user(account)
