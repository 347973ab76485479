"""`ailys image build ENV`: one spec -> an OCI image in the store's podman and a SquashFS image
for HPC nodes, from the same root file system, with no registry (docs/images.md).

Steps, each named in the progress display and in a failure: base (debootstrap minbase, cached by
suite and Debian packages), copy, venv (the lock, pip --require-hashes), learner (this project's
exchange client and Jupyter config), kernels, labextension (the footprint status bar), frugal (no
docs, caches or foreign locales), oci (podman import), hpc (mksquashfs), index. A failed build removes its work folder and any half-made
tag, and leaves the environment's current image in service. Root only: debootstrap and chroot.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import fcntl
import hashlib
import json
import os
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from . import IMAGE_PREFIX, SPECS_DIR
from .frugal import slim
from .spec import LABEXTENSION, Spec, load_spec
from .store import BuiltImage, ImageStore

BASE_PACKAGES = ("python3", "python3-venv", "ca-certificates")
IMAGE_PATH = f"{IMAGE_PREFIX}/bin:/usr/local/bin:/usr/bin:/bin"
OCI_CHANGES = (
    f"ENV PATH={IMAGE_PATH}",
    "ENV LANG=C.UTF-8",
    f'CMD ["{IMAGE_PREFIX}/bin/jupyterhub-singleuser"]',
)
# A clean environment for commands in the chroot: nothing of the host's pip config (its local
# wheel folders do not exist in there), and no cache.
CHROOT_ENV = {
    "PATH": "/usr/local/bin:/usr/bin:/bin",
    "HOME": "/root",
    "LANG": "C.UTF-8",
    "PIP_NO_CACHE_DIR": "1",
    "PIP_DISABLE_PIP_VERSION_CHECK": "1",
    "PIP_DEFAULT_TIMEOUT": "180",
}
HOST_CA = Path("/etc/ssl/certs/ca-certificates.crt")

# (name, what it does): the order of a build, shown as it runs.
STEPS = (
    ("base", "Debian base (debootstrap minbase)"),
    ("copy", "copy the base to a work folder"),
    ("venv", "venv and the locked packages (pip --require-hashes)"),
    ("learner", "exchange client and learner Jupyter config"),
    ("kernels", "Jupyter kernels"),
    ("labextension", "JupyterLab status bar's energy figure (@ailys/footprint)"),
    ("frugal", "remove docs, caches and foreign locales"),
    ("oci", "OCI image (podman import)"),
    ("hpc", "HPC image (mksquashfs)"),
    ("index", "index entry, made current"),
)


class BuildError(Exception):
    """A build failed at ``step``; the environment's current image is unchanged."""

    def __init__(self, env: str, step: str, detail: str):
        self.env, self.step, self.detail = env, step, detail
        title = dict(STEPS).get(step, step)
        super().__init__(f"building {env} failed at step {step!r} ({title}): {detail}")


# progress(step, state) with state "start" or "done"; the CLI shows it with rich.
Progress = Callable[[str, str], None]


def _quiet(step: str, state: str) -> None:
    pass


def run(argv: list[str], step: str, name: str, **kwargs) -> subprocess.CompletedProcess:
    """Run a build command; a failure raises BuildError with the end of its output."""
    try:
        done = subprocess.run(argv, capture_output=True, text=True, **kwargs)
    except OSError as err:
        raise BuildError(name, step, f"{argv[0]}: {err.strerror}") from None
    if done.returncode:
        tail = "\n".join((done.stderr or done.stdout or "").strip().splitlines()[-15:])
        raise BuildError(name, step, f"`{' '.join(argv[:4])} ...` exited {done.returncode}:\n{tail}")
    return done


def chroot(root: Path, argv: list[str], step: str, name: str, extra: dict | None = None):
    # By absolute path: the command's PATH is the chroot's, and chroot lives in /usr/sbin.
    return run(
        [shutil.which("chroot") or "/usr/sbin/chroot", str(root), *argv],
        step,
        name,
        env={**CHROOT_ENV, **(extra or {})},
    )


def apt_mirror(sources: Path = Path("/etc/apt")) -> str:
    """The Debian mirror this machine's apt uses (its first archive of Debian itself)."""
    files = [sources / "sources.list", *sorted((sources / "sources.list.d").glob("*"))]
    for path in files:
        try:
            text = path.read_text()
        except OSError:
            continue
        for url in re.findall(r"^\s*URIs:\s*(\S+)", text, re.M) + re.findall(
            r"^\s*deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+bookworm\s", text, re.M
        ):
            if url.rstrip("/").endswith("/debian"):
                return url
    raise ValueError(f"no Debian archive in {sources}/sources.list or sources.list.d (debootstrap needs one)")


def base_key(suite: str, packages: list[str]) -> str:
    return hashlib.sha256(json.dumps([suite, sorted(packages)]).encode()).hexdigest()[:12]


@contextlib.contextmanager
def store_lock(store: ImageStore) -> Iterator[None]:
    """One build at a time per store (two pytest workers, two admins): the second waits, then
    finds the image built."""
    store.root.mkdir(parents=True, exist_ok=True)
    with open(store.lock_file, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def up_to_date(spec: Spec, store: ImageStore) -> BuiltImage | None:
    """The image already built from this spec, if its tag and SquashFS are both there."""
    image = store.build_of(spec.tag)
    if image and image.squashfs.is_file() and store.has_tag(spec.tag):
        return image
    return None


def ensure(
    env: str, store: ImageStore, specs_dir: Path = SPECS_DIR, progress: Progress = _quiet
) -> BuiltImage:
    """The image of env's spec as it is now: built if its tag has no image yet, else the one
    built before (made current)."""
    spec = load_spec(env, specs_dir)
    with store_lock(store):
        image = up_to_date(spec, store)
        if image is None:
            image = build(spec, store, progress)
        elif (current := store.current(env)) is None or current.tag != image.tag:
            store.make_current(image)
        return image


def build(spec: Spec, store: ImageStore, progress: Progress = _quiet) -> BuiltImage:
    """Build ``spec`` into ``store`` (the caller holds store_lock). Root only."""
    env = spec.env
    if os.geteuid() != 0:
        raise BuildError(env, "base", "building an image needs root (debootstrap, chroot): run it as root")
    missing = [p for p in ("debootstrap", "podman", "mksquashfs") if shutil.which(p) is None]
    if missing:
        raise BuildError(
            env, "base", f"missing {', '.join(missing)} (apt-get install debootstrap podman squashfs-tools)"
        )
    work = store.work_dir(env, spec.hash12)
    seconds: dict[str, float] = {}
    sizes: dict[str, dict[str, int]] = {}

    @contextlib.contextmanager
    def step(name: str) -> Iterator[None]:
        progress(name, "start")
        started = time.monotonic()
        try:
            yield
        except BuildError:
            raise
        except Exception as err:  # an OSError of ours, say: still named by its step
            raise BuildError(env, name, f"{type(err).__name__}: {err}") from err
        seconds[name] = round(time.monotonic() - started, 1)
        progress(name, "done")

    # Work folders left by a build that was killed: only one build runs per store (store_lock).
    shutil.rmtree(work.parent, ignore_errors=True)
    sqfs = store.squashfs_path(env, spec.hash12)
    imported = False
    try:
        with step("base"):
            base = _base(spec, store)
        with step("copy"):
            work.parent.mkdir(parents=True, exist_ok=True)
            run(["cp", "-a", "--reflink=auto", str(base), str(work)], "copy", env)
            _bind_targets(work)
        with step("venv"):
            _venv(spec, work)
        with step("learner"):
            _learner(spec, work)
        with step("kernels"):
            _kernels(spec, work)
        with step("labextension"):
            _labextension(spec, work)
        with step("frugal"):
            sizes["freed"] = slim(work, spec.environment)
        with step("oci"):
            # A tag left by an earlier try moves to the new image; --force never: it would stop
            # the containers of the image in service.
            imported = True
            _oci(spec, store, work)
        with step("hpc"):
            sqfs.parent.mkdir(parents=True, exist_ok=True)
            partial = sqfs.with_suffix(".sqfs.part")
            run(_mksquashfs(work, partial), "hpc", env)
            partial.rename(sqfs)
        with step("index"):
            image = BuiltImage(
                env=env,
                tag=spec.tag,
                squashfs=sqfs,
                size_bytes=store.image_size(spec.tag),
                built=dt.datetime.now(dt.UTC).replace(microsecond=0),
                squashfs_bytes=sqfs.stat().st_size,
                seconds=seconds,
                hash=spec.hash,
                freed_bytes=sizes["freed"],
            )
            store.record(image)
            store.make_current(image)
            store.prune(env)
    except BaseException:
        current = store.current(env)
        if imported and (current is None or current.tag != spec.tag):
            store.podman("rmi", spec.tag, timeout=120)  # the half-made tag, unless in service
        sqfs.with_suffix(".sqfs.part").unlink(missing_ok=True)
        raise
    finally:
        shutil.rmtree(work, ignore_errors=True)
    store.record(image)  # with the index step's own time
    return image


# zstd level 3: 3 s and 278 MB for python-ml here, against 113 s and 243 MB at mksquashfs's
# default level 15, and 64 s, 267 MB with gzip (docs/images.md); ch-run's squashfuse reads zstd.
SQUASHFS_OPTIONS = ("-noappend", "-comp", "zstd", "-Xcompression-level", "3", "-quiet", "-no-progress")


def _mksquashfs(root: Path, target: Path) -> list[str]:
    return ["mksquashfs", str(root), str(target), *SQUASHFS_OPTIONS]


def _base(spec: Spec, store: ImageStore) -> Path:
    """The debootstrap root file system for the spec's suite and Debian packages (cached)."""
    environment = spec.environment
    packages = [*BASE_PACKAGES, *environment.debian]
    return debootstrap(
        store.base_dir(base_key(environment.suite, packages)), environment.suite, packages, spec.env
    )


def debootstrap(base: Path, suite: str, packages: list[str], env: str) -> Path:
    """A debootstrap minbase root file system with ``packages`` at ``base``, made once (kept
    complete or not at all); also the Debian target of tests/ansible. ``env`` names it in errors."""
    if (base / ".ailys-complete").is_file():
        return base
    partial = base.with_name(base.name + ".part")
    shutil.rmtree(partial, ignore_errors=True)
    partial.parent.mkdir(parents=True, exist_ok=True)
    try:
        run(
            [
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(packages)}",
                suite,
                str(partial),
                apt_mirror(),
            ],
            "base",
            env,
        )
        # debootstrap leaves the host's resolv.conf and its package lists: not part of an image.
        (partial / "etc" / "resolv.conf").unlink(missing_ok=True)
        (partial / ".ailys-complete").write_text(json.dumps({"suite": suite, "packages": packages}))
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    shutil.rmtree(base, ignore_errors=True)
    partial.rename(base)
    return base


def _bind_targets(work: Path) -> None:
    """The files podman and ch-run bind over, present in a read-only image: a SquashFS has no
    room for a new mount point, and ch-run skips the binds whose target is missing."""
    etc = work / "etc"
    if not (etc / "hosts").exists():
        (etc / "hosts").write_text("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
    (etc / "resolv.conf").unlink(missing_ok=True)
    (etc / "resolv.conf").touch()
    for name in ("passwd", "group"):
        if not (etc / name).is_file():
            raise BuildError(work.name, "copy", f"the base has no /etc/{name}")


@contextlib.contextmanager
def _network(work: Path) -> Iterator[dict[str, str]]:
    """The host's resolver and CA bundle in the chroot, for the pip step only."""
    resolv = work / "etc" / "resolv.conf"
    resolv.unlink(missing_ok=True)
    shutil.copyfile("/etc/resolv.conf", resolv)
    ca = work / "tmp" / "ailys-host-ca.crt"
    shutil.copyfile(HOST_CA, ca)
    try:
        yield {"PIP_CERT": "/tmp/ailys-host-ca.crt", "SSL_CERT_FILE": "/tmp/ailys-host-ca.crt"}
    finally:
        resolv.write_text("")  # an empty bind target again (_bind_targets)
        ca.unlink(missing_ok=True)


def _venv(spec: Spec, work: Path) -> None:
    env, prefix = spec.env, str(IMAGE_PREFIX)
    chroot(work, ["/usr/bin/python3", "-m", "venv", prefix], "venv", env)
    shutil.copyfile(spec.lock, work / "tmp" / "requirements.lock")
    with _network(work) as net:
        chroot(
            work,
            # Wheels only: the image has no compiler, and a wheel installs the same everywhere.
            [f"{prefix}/bin/pip", "install", "--require-hashes", "--no-deps", "--only-binary=:all:"]
            + ["--no-cache-dir", "-r", "/tmp/requirements.lock"],
            "venv",
            env,
            net,
        )
    (work / "tmp" / "requirements.lock").unlink()


def _learner(spec: Spec, work: Path) -> None:
    """This project's learner side, a partial package in the venv's site-packages, checked by
    importing the exchange client in the chroot."""
    for dest, source in spec.files.items():
        target = work / str(IMAGE_PREFIX).lstrip("/") / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        target.chmod(0o644)
    python = f"{IMAGE_PREFIX}/bin/python3"
    site = f"{IMAGE_PREFIX}/lib/python3.11/site-packages"
    chroot(
        work, [python, "-m", "compileall", "-q", f"{site}/grading", f"{site}/hub_config"], "learner", spec.env
    )
    chroot(work, [python, "-c", "import grading.exchange.client"], "learner", spec.env)


# What each kernel needs beyond its package: the python3 kernelspec comes with ipykernel's wheel
# (share/jupyter/kernels/python3); IRkernel's is written here, R found by absolute path.
IR_KERNEL = {
    "argv": ["/usr/bin/R", "--slave", "-e", "IRkernel::main()", "--args", "{connection_file}"],
    "display_name": "R",
    "language": "R",
}


def _kernels(spec: Spec, work: Path) -> None:
    kernels = work / str(IMAGE_PREFIX).lstrip("/") / "share" / "jupyter" / "kernels"
    if not (kernels / "python3" / "kernel.json").is_file():
        raise BuildError(spec.env, "kernels", "ipykernel's kernelspec is missing: is ipykernel in the lock?")
    if "ir" in spec.environment.kernels:
        logos = work / "usr" / "lib" / "R" / "site-library" / "IRkernel" / "kernelspec"
        target = kernels / "ir"
        target.mkdir(parents=True, exist_ok=True)
        for logo in logos.glob("logo-*"):
            shutil.copyfile(logo, target / logo.name)
        (target / "kernel.json").write_text(json.dumps(IR_KERNEL, indent=1) + "\n")


def _labextension(spec: Spec, work: Path) -> None:
    """The footprint status-bar item, as `make deps` built it (a prebuilt extension: JupyterLab
    finds it in share/jupyter/labextensions, no Python package needed)."""
    if not spec.labextension:
        raise BuildError(spec.env, "labextension", f"{LABEXTENSION} is not built: run `make deps` first")
    for dest, source in spec.labextension.items():
        target = work / str(IMAGE_PREFIX).lstrip("/") / dest
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
        target.chmod(0o644)


def _oci(spec: Spec, store: ImageStore, work: Path) -> None:
    changes = [arg for change in OCI_CHANGES for arg in ("--change", change)]
    tar = subprocess.Popen(["tar", "-C", str(work), "--numeric-owner", "-c", "."], stdout=subprocess.PIPE)
    try:
        done = subprocess.run(
            ["podman", "import", *changes, "-", spec.tag],
            stdin=tar.stdout,
            env=store.env(),
            capture_output=True,
            text=True,
        )
    finally:
        tar.stdout.close()
        tar_rc = tar.wait()
    if done.returncode or tar_rc:
        raise BuildError(
            spec.env, "oci", f"podman import exited {done.returncode}: {done.stderr.strip()[-2000:]}"
        )
