"""The frugal step of a build: what a learner's server never reads leaves the root file system.

Kept on purpose: the Debian copyright files (licences travel with the image), the compiled .pyc
of every package (a kernel or server starts faster than if each learner's process compiled them
again, into a read-only image where it cannot even cache them), the locales of French, English
and C, pip and python3-venv (a learner may still make a venv).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from hub_config.schema.environment import Environment

from . import IMAGE_PREFIX

KEEP_LOCALES = ("fr", "en", "C")
# Packages whose test suites are large and never imported by the package itself. Removing a
# `tests` folder only breaks `pkg.test()`; the smoke test's imports check the rest still loads.
TESTS_OF = ("numpy", "scipy", "pandas", "sklearn", "matplotlib", "contourpy", "fontTools")


def du(path: Path) -> int:
    """Bytes used by a file or folder (not following symlinks)."""
    if path.is_symlink() or not path.exists():
        return 0
    if path.is_file():
        return path.lstat().st_size
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except OSError:
                pass
    return total


def _remove(path: Path) -> int:
    size = du(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    return size


def removable(root: Path) -> dict[str, list[Path]]:
    """What the frugal step removes from ``root``, by reason."""
    usr = root / "usr" / "share"
    site = root / str(IMAGE_PREFIX).lstrip("/") / "lib" / "python3.11" / "site-packages"
    docs = [p for p in (usr / "doc").glob("*/*") if p.name != "copyright"]
    locales = [
        p
        for p in (usr / "locale").glob("*")
        if p.is_dir() and p.name.split("_")[0].split("@")[0] not in KEEP_LOCALES
    ]
    return {
        "docs": docs + [usr / "man", usr / "info", usr / "lintian", usr / "doc-base"],
        "locales": locales,
        "apt": [
            *(root / "var" / "lib" / "apt" / "lists").glob("*_*"),
            *(root / "var" / "cache" / "apt").glob("*.bin"),
            *(root / "var" / "cache" / "apt" / "archives").glob("*.deb"),
            *(root / "var" / "cache" / "debconf").glob("*-old"),
        ],
        "logs": [*(root / "var" / "log").glob("*.log"), root / "var" / "log" / "apt"],
        "caches": [root / "root" / ".cache", *(root / "tmp").glob("*")],
        "tests": [p for name in TESTS_OF for p in (site / name).rglob("tests") if p.is_dir()],
    }


def slim(root: Path, environment: Environment | None = None) -> dict[str, int]:
    """Remove what ``removable`` lists; the bytes freed, by reason."""
    freed: dict[str, int] = {}
    for reason, paths in removable(root).items():
        # Deepest first, so a folder inside another already removed is not counted twice.
        freed[reason] = sum(_remove(p) for p in sorted(set(paths), key=lambda p: -len(p.parts)))
    return freed
