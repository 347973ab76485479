"""The gallery's own folder for Jupyter's and IPython's runtime files, and the sweep of folders
that galleries which did not exit cleanly left behind.

Each start makes ``<tmp>/ailys-gallery-XXXXXXXX/`` (mode 0700) holding ``home/`` (HOME of the
demo kernels), ``ipython/`` (their profile) and ``owner`` (the pid and start time of the gallery
that made it). A clean exit removes it (atexit); a gallery killed (SIGKILL, the machine's OOM
killer) cannot, so each start first removes the folders of the same account whose owner is no
longer running: /tmp holds at most one folder per running gallery.
"""

from __future__ import annotations

import atexit
import os
import shutil
import stat
import tempfile
from pathlib import Path

import psutil

PREFIX = "ailys-gallery-"


def _started(pid: int) -> str:
    return f"{pid} {psutil.Process(pid).create_time():.2f}"


def make_run_folder(uid: int, gid: int) -> Path:
    """A fresh folder owned by ``uid``, removed at a clean exit."""
    folder = Path(tempfile.mkdtemp(prefix=PREFIX))
    (folder / "home").mkdir()
    (folder / "owner").write_text(_started(os.getpid()) + "\n")
    for path in (folder, folder / "home", folder / "owner"):
        os.chown(path, uid, gid)
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def is_stale(folder: Path, uid: int) -> bool:
    """A run folder of ``uid`` (a real folder, not a link) whose gallery is not running."""
    try:
        info = folder.lstat()
        owner = (folder / "owner").read_text().split()
    except (OSError, UnicodeDecodeError):
        return False  # not one of ours, or not readable by us: left alone
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or len(owner) != 2 or not owner[0].isdigit():
        return False
    try:
        return _started(int(owner[0])) != " ".join(owner)  # its pid reused by another process
    except psutil.Error:
        return True  # no such process


def sweep_stale(uid: int, tmp: Path | None = None) -> list[Path]:
    """Remove ``uid``'s run folders whose gallery is gone; the folders removed."""
    tmp = Path(tmp or tempfile.gettempdir())
    removed = []
    for folder in tmp.glob(f"{PREFIX}*"):
        if is_stale(folder, uid):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed
