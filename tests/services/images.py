"""The course images for tests: built once on the default store (images.store.DEFAULT_ROOT), so a
developer's machine keeps them between runs and a CI run builds each once, shared by both pytest
workers (images.build.ensure holds the store's lock while it builds)."""

from __future__ import annotations

import os
import shutil

from images.build import ensure
from images.store import DEFAULT_ROOT, BuiltImage, ImageStore
from tests.conftest import need

BUILD_PROGRAMS = ("debootstrap", "podman", "runc", "mksquashfs", "chroot")


def course_image(env: str = "python-ml") -> BuiltImage:
    """The current image of env's spec (built if needed, minutes from nothing): skipped loudly on
    a machine that cannot build it, failed in CI."""
    missing = [p for p in BUILD_PROGRAMS if shutil.which(p) is None]
    need(
        not missing,
        f"cannot build course images: missing {', '.join(missing)} (make test-deps installs them)",
    )
    need(os.geteuid() == 0, "building a course image needs root (debootstrap, chroot)")
    return ensure(env, ImageStore(DEFAULT_ROOT))
