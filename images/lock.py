"""Regenerate an environment's lock: images/<env>/requirements.in -> requirements.lock, with the
hash of every file of each pinned release, for the image's Python (CPython 3.11, Debian 12's) on
Linux x86_64, whatever machine runs it (docs/images.md, "Changing a lock").

uv resolves in about a second and writes the same lock from the same index state on any machine
(target Python and platform given, not taken from the caller). It is a developer's tool (the
`test` extra): a build installs the lock with the image's own pip, --require-hashes.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

from . import SPECS_DIR

PYTHON_VERSION = "3.11"
# Debian 12's glibc is 2.36: wheels for manylinux_2_36 and older install in the image.
PLATFORM = "x86_64-manylinux_2_36"
HEADER = """\
# The lock of images/{env}: generated from requirements.in, do not edit by hand.
# Regenerate: make lock ENV={env} (docs/images.md). For CPython {python} on Linux x86_64.
"""


def uv() -> str:
    found = Path(sys.executable).parent / "uv"
    return str(found) if found.is_file() else (shutil.which("uv") or "uv")


def compile_lock(env: str, specs_dir: Path = SPECS_DIR, upgrade: bool = False) -> Path:
    folder = specs_dir / env
    lock = folder / "requirements.lock"
    argv = [uv(), "pip", "compile", "--quiet", "--generate-hashes", "--no-header"]
    # --no-config: no uv.toml of the caller's changes the index or the resolution.
    argv += ["--python-version", PYTHON_VERSION, "--python-platform", PLATFORM, "--no-config"]
    argv += ["-o", str(lock), str(folder / "requirements.in")]
    if upgrade:
        argv.append("--upgrade")
    subprocess.run(argv, check=True)
    lock.write_text(HEADER.format(env=env, python=PYTHON_VERSION) + lock.read_text())
    return lock


if __name__ == "__main__":
    for name in sys.argv[1:]:
        print(compile_lock(name))
