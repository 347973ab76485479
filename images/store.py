"""Where built images live: podman's own config and storage (never /etc/containers), the SquashFS
images for HPC nodes, the cached debootstrap bases, and an index of what was built and what is in
service for each environment.

Layout under the root (default <repo>/var/images)::

    podman/containers.conf, podman/storage.conf, podman/storage/, podman/run/
    hpc/<env>-<hash12>.sqfs
    base/<hash12>/          debootstrap root file systems, by (suite, Debian packages)
    work/                   half-made builds (removed when a build ends)
    index.json              every build, and the current tag of each environment
    lock                    fcntl lock: one build at a time per store
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path

from . import REPO

DEFAULT_ROOT = REPO / "var" / "images"

# Settings these machines need (shared/notes/real-services.md): runc (crun refuses the hybrid
# cgroups), cgroupfs (no systemd), ulimits below what root may raise here.
CONTAINERS_CONF = """\
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
log_driver = "k8s-file"

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
"""

# overlay: a container starts on the image's layer as it is (0.4 s for `run --rm IMG true` here);
# vfs copies the whole image for each container (1.2 s for a 275 MB base, and its disk).
STORAGE_CONF = """\
[storage]
driver = "{driver}"
graphroot = "{root}/podman/storage"
runroot = "{root}/podman/run"
"""


def podman_env(root: Path) -> dict[str, str]:
    """The variables with which any podman process uses this store (add them to os.environ)."""
    root = Path(root).absolute()
    _configure(root)
    return {
        "CONTAINERS_CONF": str(root / "podman" / "containers.conf"),
        "CONTAINERS_STORAGE_CONF": str(root / "podman" / "storage.conf"),
    }


def _configure(root: Path) -> None:
    """Write the store's podman config once. The storage driver is chosen then and kept: podman
    cannot open a storage made by another driver."""
    conf = root / "podman"
    storage = conf / "storage.conf"
    if storage.is_file():
        return
    conf.mkdir(parents=True, exist_ok=True)
    with open(conf / ".configure.lock", "w") as lock:  # two processes on a new store: one writes
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not storage.is_file():
            _choose_driver(root, conf, storage)


def _choose_driver(root: Path, conf: Path, storage: Path) -> None:
    (conf / "containers.conf").write_text(CONTAINERS_CONF)
    for driver in ("overlay", "vfs"):
        trial = conf / f"storage.conf.{driver}"
        trial.write_text(STORAGE_CONF.format(driver=driver, root=root))
        env = {**os.environ, "CONTAINERS_CONF": str(conf / "containers.conf")}
        env["CONTAINERS_STORAGE_CONF"] = str(trial)
        done = subprocess.run(
            ["podman", "info", "--format", "{{.Store.GraphDriverName}}"],
            env=env,
            capture_output=True,
            text=True,
        )
        if done.returncode == 0 and done.stdout.strip() == driver:
            trial.rename(storage)
            return
        trial.unlink()
        for made in (conf / "storage", conf / "run"):
            shutil.rmtree(made, ignore_errors=True)
    raise RuntimeError(f"podman can use neither overlay nor vfs storage here: {done.stderr.strip()}")


@dataclasses.dataclass(frozen=True)
class BuiltImage:
    env: str
    tag: str  # localhost/ailys-<env>:<hash12>
    squashfs: Path  # <root>/hpc/<env>-<hash12>.sqfs
    size_bytes: int  # the OCI image's size in podman's store
    built: dt.datetime
    squashfs_bytes: int = 0
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)  # per build step
    hash: str = ""
    freed_bytes: dict[str, int] = dataclasses.field(default_factory=dict)  # by the frugal step

    def to_json(self) -> dict:
        data = dataclasses.asdict(self)
        data.update(squashfs=str(self.squashfs), built=self.built.isoformat())
        return data

    @classmethod
    def from_json(cls, data: dict) -> BuiltImage:
        data = {**data, "squashfs": Path(data["squashfs"]), "built": dt.datetime.fromisoformat(data["built"])}
        return cls(**{k: v for k, v in data.items() if k in {f.name for f in dataclasses.fields(cls)}})


class ImageStore:
    def __init__(self, root: Path = DEFAULT_ROOT):
        self.root = Path(root).absolute()

    # --- places -----------------------------------------------------------------------------
    @property
    def index_file(self) -> Path:
        return self.root / "index.json"

    @property
    def lock_file(self) -> Path:
        return self.root / "lock"

    def base_dir(self, key: str) -> Path:
        return self.root / "base" / key

    def work_dir(self, env: str, hash12: str) -> Path:
        return self.root / "work" / f"{env}-{hash12}"

    def squashfs_path(self, env: str, hash12: str) -> Path:
        return self.root / "hpc" / f"{env}-{hash12}.sqfs"

    def env(self) -> dict[str, str]:
        """os.environ with this store's podman config."""
        return {**os.environ, **podman_env(self.root)}

    def podman(self, *args: str, timeout: float = 600, check: bool = False) -> subprocess.CompletedProcess:
        return subprocess.run(
            ["podman", *args], env=self.env(), capture_output=True, text=True, timeout=timeout, check=check
        )

    # --- index ------------------------------------------------------------------------------
    def _read(self) -> dict:
        try:
            return json.loads(self.index_file.read_text())
        except FileNotFoundError:
            return {"current": {}, "builds": {}}

    def _write(self, data: dict) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        new = self.index_file.with_suffix(".new")
        new.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        new.rename(self.index_file)  # readers see the old index or the new one, never half

    def builds(self, env: str | None = None) -> list[BuiltImage]:
        found = [BuiltImage.from_json(b) for b in self._read()["builds"].values()]
        return sorted((b for b in found if env in (None, b.env)), key=lambda b: b.built)

    def build_of(self, tag: str) -> BuiltImage | None:
        data = self._read()["builds"].get(tag)
        return BuiltImage.from_json(data) if data else None

    def current(self, env: str) -> BuiltImage | None:
        """The image in service for env, or None."""
        tag = self._read()["current"].get(env)
        return self.build_of(tag) if tag else None

    def record(self, image: BuiltImage) -> None:
        data = self._read()
        data["builds"][image.tag] = image.to_json()
        self._write(data)

    def make_current(self, image: BuiltImage) -> None:
        data = self._read()
        data["current"][image.env] = image.tag
        self._write(data)

    def forget(self, tag: str) -> None:
        data = self._read()
        data["builds"].pop(tag, None)
        data["current"] = {e: t for e, t in data["current"].items() if t != tag}
        self._write(data)

    def prune(self, env: str, keep: int = 2) -> list[str]:
        """Remove env's builds older than the newest ``keep`` (the current one and the one
        before it, to go back to), tag and SquashFS; a tag that a container still uses stays."""
        current = self.current(env)
        removed = []
        for old in self.builds(env)[:-keep]:
            if current and old.tag == current.tag:
                continue
            if self.has_tag(old.tag) and self.podman("rmi", old.tag, timeout=120).returncode:
                continue  # in use by a container: kept, and pruned after a later build
            old.squashfs.unlink(missing_ok=True)
            self.forget(old.tag)
            removed.append(old.tag)
        return removed

    # --- what exists ------------------------------------------------------------------------
    def has_tag(self, tag: str) -> bool:
        return self.podman("image", "exists", tag, timeout=60).returncode == 0

    def image_size(self, tag: str) -> int:
        done = self.podman("image", "inspect", "--format", "{{.Size}}", tag, timeout=60, check=True)
        return int(done.stdout.strip())
