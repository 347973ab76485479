"""Course images for real: python-ml built from its spec (from nothing on a new machine, once per
CI run, shared by every test that needs it), listed with its courses, its smoke test run inside
the OCI image and the SquashFS, a rebuild of the same spec that does nothing, and a build that
fails at a named step and leaves the image in service."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from images.spec import load_spec, parse_lock
from images.store import DEFAULT_ROOT, ImageStore
from tests.services.images import course_image

pytestmark = [pytest.mark.podman, pytest.mark.slow]

AILYS = str(Path(sys.executable).parent / "ailys")


def ailys(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([AILYS, *args], capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def image():
    started = time.monotonic()
    built = course_image("python-ml")
    print(f"course_image('python-ml'): {time.monotonic() - started:.1f} s, build steps {built.seconds}")
    return built


def test_built_from_its_spec(image):
    spec = load_spec("python-ml")
    store = ImageStore(DEFAULT_ROOT)
    assert image.tag == spec.tag == store.current("python-ml").tag
    assert store.has_tag(image.tag) and image.squashfs.is_file()
    assert image.squashfs == DEFAULT_ROOT / "hpc" / f"python-ml-{spec.hash12}.sqfs"
    print(f"python-ml: OCI {image.size_bytes / 1e6:.0f} MB, SquashFS {image.squashfs_bytes / 1e6:.0f} MB")
    assert image.size_bytes <= 1.2e9  # the goal
    inspect = store.podman(
        "image", "inspect", "--format", "{{.Config.Env}} {{.Config.Cmd}} {{.Config.User}}", image.tag
    )
    assert "PATH=/opt/ailys-env/bin:/usr/local/bin:/usr/bin:/bin" in inspect.stdout
    assert "LANG=C.UTF-8" in inspect.stdout and "jupyterhub-singleuser" in inspect.stdout
    done = store.podman("run", "--rm", "--pull=never", "--network=none", image.tag, "sh", "-c", _FRUGAL)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["no-docs", "no-compiler", "no-apt-lists", "passwd", "group"], done.stdout


_FRUGAL = (
    "[ ! -e /usr/share/man ] && echo no-docs; command -v gcc cc >/dev/null || echo no-compiler; "
    '[ -z "$(ls /var/lib/apt/lists | grep _)" ] && echo no-apt-lists; '
    "[ -f /etc/passwd ] && echo passwd; [ -f /etc/group ] && echo group"
)


def test_list_shows_it_with_its_courses(image):
    done = ailys("image", "list", "--site", "local")
    assert done.returncode == 0, done.stderr
    line = next(line for line in done.stdout.splitlines() if "python-ml" in line)
    assert image.tag in line and "frugal-ml" in line and "ia-industrie" in line
    assert "r-stats" in done.stdout


def test_check_passes(image):
    done = ailys("image", "check", "python-ml")
    print(done.stdout)
    assert done.returncode == 0, done.stdout + done.stderr
    for name in (
        "imports",
        "nbgrader",
        "kernels",
        "exchange client",
        "cell 1 (python3)",
        "hpc image (ch-run)",
    ):
        assert f"ok   {name}:" in done.stdout


def test_same_spec_is_not_rebuilt(image):
    started = time.monotonic()
    done = ailys("image", "build", "python-ml")
    seconds = time.monotonic() - started
    print(f"no-op rebuild: {seconds:.2f} s")
    assert done.returncode == 0, done.stderr
    assert f"{image.tag} is built already" in done.stdout
    assert seconds < 15


def test_failed_step_is_named_and_keeps_the_image_in_service(image, tmp_path):
    specs = tmp_path / "specs"
    shutil.copytree(load_spec("python-ml").folder, specs / "python-ml")
    lock = specs / "python-ml" / "requirements.lock"
    text = lock.read_text()
    for number, wrong in enumerate(parse_lock(text)[0].hashes):  # every file of the first pin
        text = text.replace(wrong, f"{number:064d}")
    lock.write_text(text)
    bad = load_spec("python-ml", specs)
    assert bad.tag != image.tag
    done = ailys("image", "build", "python-ml", "--specs", str(specs))
    print(done.stderr[-3000:])
    assert done.returncode == 1
    assert "failed at step 'venv'" in done.stderr and "THESE PACKAGES DO NOT MATCH THE HASHES" in done.stderr
    assert f"still in service: {image.tag}" in done.stderr
    store = ImageStore(DEFAULT_ROOT)
    assert store.current("python-ml").tag == image.tag
    assert not store.has_tag(bad.tag) and store.build_of(bad.tag) is None
    assert not store.work_dir("python-ml", bad.hash12).exists()
    assert not os.path.exists(store.squashfs_path("python-ml", bad.hash12))
