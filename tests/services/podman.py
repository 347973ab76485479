"""podman for the tests, with a configuration and storage of its own (never /etc/containers).

No registry is reachable here, so a container's root filesystem is a folder the test assembles
(``rootfs``): the machine's /usr and the project's virtual environment mounted read-only, a
/etc with the container user's passwd line, and nothing else of the host: no hub folder, no
other home. Settings that these machines need (../shared/notes/real-services.md): runc (crun
refuses the hybrid cgroups), cgroupfs (no systemd), ulimits below what root may raise here.
Containers run in the foreground with --rm and are removed by name if a run is cut short.

``PodmanService`` is podman's Docker-compatible service (`podman system service`) on a socket of
its own, on the image store of `ailys image build` (images.store.podman_env), for DockerSpawner:
started and stopped by PID, the containers of a test's learners removed by their label.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from images.store import CONTAINERS_CONF  # the settings these machines need, one copy
from tests.conftest import need

STORAGE_CONF = """\
[storage]
driver = "vfs"
graphroot = "{root}/storage"
runroot = "{root}/run"
"""


class Podman:
    def __init__(self, root: Path):
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "containers.conf").write_text(CONTAINERS_CONF)
        (root / "storage.conf").write_text(STORAGE_CONF.format(root=root))
        self.env = {
            **os.environ,
            "CONTAINERS_CONF": str(root / "containers.conf"),
            "CONTAINERS_STORAGE_CONF": str(root / "storage.conf"),
        }
        self.names: list[str] = []

    @staticmethod
    def missing_programs() -> list[str]:
        return [p for p in ("podman", "runc") if shutil.which(p) is None]

    def podman(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def rootfs(self, user: tuple[str, int, int, str], mounts: list[str]) -> tuple[Path, list[str]]:
        """A root folder and the mount options that make it a container holding only /usr and
        ``mounts`` (read-only, at their own paths), and the user's home (read-write)."""
        name, uid, gid, home = user
        root = Path(tempfile.mkdtemp(prefix="rootfs-", dir=self.root))
        root.chmod(0o755)
        for link in ("bin", "lib", "lib64", "sbin"):  # Debian 12's merged /usr
            if os.path.islink(f"/{link}"):
                (root / link).symlink_to(os.readlink(f"/{link}"))
        for folder in ("usr", "etc", "tmp", "proc", "dev", "sys", "run", home.lstrip("/")):
            (root / folder).mkdir(parents=True, exist_ok=True)
        (root / "tmp").chmod(0o1777)
        (root / "etc" / "passwd").write_text(
            f"root:x:0:0::/root:/bin/sh\n{name}:x:{uid}:{gid}::{home}:/bin/sh\n"
        )
        (root / "etc" / "group").write_text(f"root:x:0:\n{name}:x:{gid}:\n")
        options = ["-v", "/usr:/usr:ro"]
        for path in mounts:
            (root / path.lstrip("/")).mkdir(parents=True, exist_ok=True)
            options += ["-v", f"{path}:{path}:ro"]
        return root, options

    def run(
        self, name: str, rootfs: Path, options: list[str], argv: list[str], timeout: float = 120
    ) -> subprocess.CompletedProcess:
        """``argv`` in a new container (its own mount, PID, IPC and UTS namespaces), host network
        (the hub listens on loopback only), removed when it ends."""
        self.names.append(name)
        return self.podman(
            "run",
            "--rm",
            "--name",
            name,
            "--network=host",
            "--pull=never",
            "--tmpfs",
            "/tmp",
            *options,
            "--rootfs",
            str(rootfs),
            *argv,
            timeout=timeout,
        )

    def problem(self) -> str | None:
        """Why podman cannot run a container here (its own words), or None."""
        root, options = self.rootfs(("probe", 65534, 65534, "/home/probe"), [])
        done = self.run(
            "ailys-probe", root, ["--user", "65534:65534", *options], ["/usr/bin/true"], timeout=60
        )
        return (
            f"podman cannot run a container here: {done.stderr.strip() or done.stdout}"
            if done.returncode
            else None
        )

    def stop(self) -> None:
        for name in self.names:
            self.podman("rm", "--force", "--time", "0", name, timeout=60)
        shutil.rmtree(self.root, ignore_errors=True)


def podman_for_tests():
    """A Podman for one test module: skipped loudly on a laptop without it, failed in CI."""
    missing = Podman.missing_programs()
    need(not missing, f"podman is not installed (missing {', '.join(missing)}; apt-get install podman runc)")
    need(os.geteuid() == 0, "the container tests run podman as root (rootful), with learners' uids inside")
    podman = Podman(Path(tempfile.mkdtemp(prefix="ailys-podman-")))
    try:
        problem = podman.problem()
        need(problem is None, problem or "")
        yield podman
    finally:
        podman.stop()


class PodmanService:
    """podman's Docker-compatible service (`podman system service`) on a socket of its own, with
    the image store's config and storage (images.store.podman_env): what DockerSpawner talks to.
    Started and stopped by PID; the containers of the test's learners are removed by label."""

    def __init__(self, store_root: Path):
        from images.store import podman_env

        self.dir = Path(tempfile.mkdtemp(prefix="ailys-podman-service-"))
        self.socket = self.dir / "podman.sock"
        self.env = {**os.environ, **podman_env(store_root)}
        self.log = self.dir / "podman.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> PodmanService:
        from hub_config.launch import wait_for_podman

        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                ["podman", "system", "service", "--time=0", f"unix://{self.socket}"],
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        wait_for_podman(self.socket, timeout=60, alive=lambda: self.proc.poll() is None)
        return self

    def podman(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        """The podman command line on the same store (what an administrator would type)."""
        return subprocess.run(
            ["podman", *args], env=self.env, capture_output=True, text=True, timeout=timeout
        )

    def containers(self, user: str) -> list[dict]:
        """The containers (running or not) of a learner, as `podman ps --all` lists them."""
        import json

        done = self.podman("ps", "--all", "--format=json", f"--filter=label=ailys-hub.user={user}")
        return json.loads(done.stdout or "[]")

    def remove_containers(self, users: list[str]) -> None:
        for user in users:
            for c in self.containers(user):
                self.podman("rm", "--force", "--time=0", c["Id"])

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)


def podman_service_for_tests(store_root: Path | None = None):
    """The service for a module, on the image store (default: images.store.DEFAULT_ROOT, where
    tests.services.images.course_image builds): skipped loudly on a laptop without podman, failed in CI."""
    missing = Podman.missing_programs()
    need(not missing, f"podman is not installed (missing {', '.join(missing)}; apt-get install podman runc)")
    need(os.geteuid() == 0, "the container tests run podman as root (rootful), with learners' uids inside")
    from images.store import DEFAULT_ROOT

    service = PodmanService(store_root or DEFAULT_ROOT)
    try:
        yield service.start()
    finally:
        service.stop()
