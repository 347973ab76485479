"""The deploy target of tests/ansible: a podman container made from a Debian root file system,
as a fresh service node would be, reached by Ansible over ssh (pipelining, ControlPersist).

No registry is reachable, so the root file system comes from debootstrap, by images/build.py's
own ``debootstrap`` (minbase), with the Debian packages the roles install already in it: that
base is cached under var/cache/ansible-target/<hash of suite and packages>, like the images'
bases, and each test module copies it (the roles' apt tasks then find their packages). The
container has a network of its own (podman's bridge): only nginx's ports are published, on
127.0.0.1; apt, pip and npm inside reach the same mirrors as this machine, with its CA bundle.
PID 1 is catatonit (podman --init), not systemd: tests/ansible/units.py starts the units.

sshd is the container's command, published on 127.0.0.1 only, keys only. Its host key and the
client's key pair are made by the test in the test's folder: the client checks the host key
against that known one (StrictHostKeyChecking=yes), never blindly. Over ssh Ansible sends a task
in one round trip (pipelining) on one kept connection (ControlPersist); the podman connection
took several `podman exec` and a copy per task, ~15 s each on a loaded machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tomllib
import uuid
from pathlib import Path

from images.build import BASE_PACKAGES, base_key, debootstrap, store_lock
from images.store import DEFAULT_ROOT, ImageStore
from tests.conftest import need
from tests.services import free_port
from tests.services.hub import wait_until
from tests.services.podman import Podman

REPO = Path(__file__).resolve().parents[2]
SUITE = "bookworm"
# What the roles install on the test site (hub, proxy, nginx; sudo and slurm-client for the
# doctor's checks), python3-apt for Ansible's apt module, procps for the units' launcher, and
# openssh-server: Ansible reaches the target over ssh, as a service node, with pipelining.
PACKAGES = (
    "python3",
    "python3-venv",
    "python3-apt",
    "ca-certificates",
    "git",
    "nginx",
    "nodejs",
    "npm",
    "sudo",
    "slurm-client",
    "procps",
    "openssh-server",
)
CACHE = REPO / "var" / "cache" / "ansible-target"
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")
# Where the container sees this machine's CA bundle (pip and npm reach their indexes through it).
TARGET_HOST_CA = "/etc/ailys-test/host-ca.crt"
PROGRAMS = ("podman", "runc", "debootstrap", "chroot", "ssh", "ssh-keygen")


def base_rootfs() -> Path:
    """The cached Debian base with PACKAGES (minutes the first time, then a no-op); one builder
    at a time (two pytest workers, a bench beside a test run).

    Two layers: images/build.py's own debootstrap base (python3, python3-venv, ca-certificates,
    shared with the course images' build under their store's lock), then apt-get inside a
    container of it for the rest: debootstrap cannot configure npm's dependencies itself."""
    target = CACHE / base_key(SUITE, list(PACKAGES))
    if (target / COMPLETE).is_file():
        return target
    store = ImageStore(DEFAULT_ROOT)
    first = store.base_dir(base_key(SUITE, list(BASE_PACKAGES)))
    # A complete base is never changed (made aside, then renamed): no need to wait for the lock,
    # which an image build holds for minutes.
    with contextlib.nullcontext() if (first / ".ailys-complete").is_file() else store_lock(store):
        first = debootstrap(
            store.base_dir(base_key(SUITE, list(BASE_PACKAGES))), SUITE, list(BASE_PACKAGES), "base"
        )
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / COMPLETE).is_file():
            _add_packages(first, target)
    return target


COMPLETE = ".ailys-target-complete"


def _add_packages(first: Path, target: Path) -> None:
    partial = target.with_name(target.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    subprocess.run(["cp", "-a", "--reflink=auto", str(first), str(partial)], check=True)
    # No daemon started by a package's postinst while it is installed (policy-rc.d: 101).
    policy = partial / "usr/sbin/policy-rc.d"
    policy.write_text("#!/bin/sh\nexit 101\n")
    policy.chmod(0o755)
    shutil.copyfile(HOST_CA, partial / "tmp/host-ca.crt")
    podman = Podman(CACHE / f"podman-{uuid.uuid4().hex[:8]}")
    try:
        script = (
            "apt-get -o Acquire::https::CAInfo=/tmp/host-ca.crt update -qq && "
            f"apt-get install -y -qq --no-install-recommends {' '.join(PACKAGES)} && apt-get clean"
        )
        podman.names.append(name := f"d18-base-{uuid.uuid4().hex[:8]}")
        done = podman.podman(
            "run",
            "--rm",
            "--name",
            name,
            "--env",
            "DEBIAN_FRONTEND=noninteractive",
            "--rootfs",
            str(partial),
            "/bin/sh",
            "-c",
            script,
            timeout=1200,
        )
        if done.returncode:
            raise RuntimeError(f"apt-get in the target's base: {done.stdout[-2000:]}{done.stderr[-2000:]}")
    finally:
        podman.stop()
    policy.unlink()
    (partial / "tmp/host-ca.crt").unlink()
    (partial / COMPLETE).write_text(" ".join(PACKAGES) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)


def wheelhouse() -> Path:
    """The project's requirements as wheels, fetched (or built) once on this machine (same
    Debian, same Python) per pyproject.toml, for pip in the target to install from with no
    index: the index here marks its answers uncacheable, so pip's own cache would download
    ~300 MB each run."""
    key = hashlib.sha256((REPO / "pyproject.toml").read_bytes()).hexdigest()[:12]
    folder = CACHE / f"wheelhouse-{key}"
    if (folder / ".complete").is_file():
        return folder
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (folder / ".complete").is_file():
            partial = folder.with_name(folder.name + ".part")
            shutil.rmtree(partial, ignore_errors=True)
            # The project's dependencies, not the project (its build would walk var/ too).
            project = tomllib.loads((REPO / "pyproject.toml").read_text())
            needs = [*project["project"]["dependencies"], *project["build-system"]["requires"]]
            # Wheels only (an sdist built here once, not by each target's pip).
            done = subprocess.run(
                [sys.executable, "-m", "pip", "wheel", "-q", "-w", str(partial), *needs, "pip", "wheel"],
                capture_output=True,
                text=True,
                timeout=1800,
            )
            if done.returncode:
                raise RuntimeError(f"pip wheel of the project's requirements: {done.stderr[-3000:]}")
            (partial / ".complete").touch()
            partial.rename(folder)
    return folder


def skip_unless_possible() -> None:
    missing = [p for p in PROGRAMS if shutil.which(p) is None]
    need(not missing, f"cannot make the deploy target: missing {', '.join(missing)} (make test-deps)")
    need(os.geteuid() == 0, "the deploy target needs root (debootstrap, podman with a root file system)")


class Target:
    """One container, its root file system a copy of the base in ``work``."""

    def __init__(self, work: Path):
        self.work = work
        self.name = f"d18-target-{uuid.uuid4().hex[:8]}"
        self.podman = Podman(work / "podman")
        self.rootfs = work / "rootfs"
        self.https_port = free_port()
        self.http_port = free_port()
        self.ssh_port = free_port()
        self.ssh_dir = work / "ssh"
        self.ssh_key = self.ssh_dir / "id_ed25519"
        self.known_hosts = self.ssh_dir / "known_hosts"

    def start(self, mounts: dict[Path, str]) -> Target:
        """A copy of the base, started with ``mounts`` (host path -> container path, read-only)."""
        base = base_rootfs()
        subprocess.run(["cp", "-a", "--reflink=auto", str(base), str(self.rootfs)], check=True)
        (self.rootfs / TARGET_HOST_CA.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(HOST_CA, self.rootfs / TARGET_HOST_CA.lstrip("/"))
        self._ssh_keys()
        volumes = [f"{host}:{inside}:ro" for host, inside in mounts.items()]
        self.podman.names.append(self.name)
        done = self.podman.podman(
            "run",
            "--detach",
            "--init",  # catatonit as PID 1 reaps the daemons' orphans, as init does
            "--name",
            self.name,
            "--hostname",
            "ailys-target",
            "--publish",
            f"127.0.0.1:{self.https_port}:443",
            "--publish",
            f"127.0.0.1:{self.http_port}:80",
            "--publish",
            f"127.0.0.1:{self.ssh_port}:22",
            *(arg for volume in volumes for arg in ("--volume", volume)),
            "--rootfs",
            str(self.rootfs),
            "/bin/sh",
            "-c",
            "mkdir -p -m 0755 /run/sshd && exec /usr/sbin/sshd -D -e",
        )
        if done.returncode:
            raise RuntimeError(f"podman run: {done.stderr.strip()}")
        wait_until(self._ssh_answers, 60, f"sshd of the target on 127.0.0.1:{self.ssh_port}", every=0.5)
        return self

    def _ssh_keys(self) -> None:
        """A host key of this target's own (not the cached base's, shared by every copy), the
        client's key pair, root's authorized_keys, and the known_hosts line of that host key."""
        self.ssh_dir.mkdir(mode=0o700, parents=True)
        etc = self.rootfs / "etc/ssh"
        for old in etc.glob("ssh_host_*"):
            old.unlink()
        host_key = etc / "ssh_host_ed25519_key"
        for key, comment in ((host_key, "ailys-target"), (self.ssh_key, "d18 deploy test")):
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(key)], check=True
            )
        (etc / "sshd_config.d/ailys-test.conf").write_text(
            "HostKey /etc/ssh/ssh_host_ed25519_key\n"
            "PermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\n"
            "KbdInteractiveAuthentication no\n"
        )
        ssh = self.rootfs / "root/.ssh"
        ssh.mkdir(mode=0o700, exist_ok=True)
        (ssh / "authorized_keys").write_text(self.ssh_key.with_suffix(".pub").read_text())
        (ssh / "authorized_keys").chmod(0o600)
        host_public = host_key.with_suffix(".pub").read_text().split()
        self.known_hosts.write_text(f"[127.0.0.1]:{self.ssh_port} {host_public[0]} {host_public[1]}\n")

    def ssh_options(self) -> list[str]:
        """ssh's options for this target: its key, its known host key checked, nothing else."""
        return [
            "-o", f"UserKnownHostsFile={self.known_hosts}",
            "-o", "GlobalKnownHostsFile=/dev/null",
            "-o", "StrictHostKeyChecking=yes",
            "-o", "IdentitiesOnly=yes",
            "-o", "BatchMode=yes",
        ]  # fmt: skip

    def _ssh_answers(self) -> bool:
        done = subprocess.run(
            ["ssh", *self.ssh_options(), "-i", str(self.ssh_key), "-p", str(self.ssh_port)]
            + ["-o", "ConnectTimeout=5", "root@127.0.0.1", "true"],
            capture_output=True,
            timeout=30,
        )
        return done.returncode == 0

    def run(self, argv: list[str], user: str = "root", timeout: float = 120) -> subprocess.CompletedProcess:
        return self.podman.podman("exec", "--user", user, self.name, *argv, timeout=timeout)

    def path(self, inside: str) -> Path:
        """A file of the container, as this machine sees it (its root file system is a folder)."""
        return self.rootfs / inside.lstrip("/")

    def inventory_vars(self) -> dict[str, object]:
        """How Ansible reaches this target: ssh as root with the test's key, the host key checked,
        each task piped into one python3 over a connection kept for the run."""
        return {
            "ansible_connection": "ssh",
            "ansible_host": "127.0.0.1",
            "ansible_port": self.ssh_port,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(self.ssh_key),
            "ansible_ssh_common_args": " ".join(self.ssh_options()),
            "ansible_ssh_args": "-o ControlMaster=auto -o ControlPersist=120s",
            "ansible_control_path_dir": str(self.ssh_dir / "cp"),
            "ansible_ssh_pipelining": True,
            "ansible_python_interpreter": "/usr/bin/python3",
        }

    def ansible_env(self) -> dict[str, str]:
        """The environment of ansible-playbook: the repository's ansible.cfg."""
        return {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible" / "ansible.cfg")}

    def stop(self) -> None:
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.podman.stop()
        shutil.rmtree(self.work, ignore_errors=True)
