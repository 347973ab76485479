"""The site's retention policy (site file ``retention``): what becomes of a trainee's files after
their courses' access windows close. A trainee is a person whose every course is a short course
(roster.closed_for); anyone else's files stay until `ailys person forget`.

``archive_after`` the last window closed: their home, exchange submissions and feedback, and
grading's copies of them go into <data_dir>/archives/<name>-<YYYY-MM-DD>.tar.zst (mode 0600, the
day it was made), then the originals are deleted. ``delete_after`` that day, the archive is
deleted. Grades stay in the gradebook, the course's record (forget applies the course's rule).

Run by the course sync at each period and by `ailys retention run [--dry-run]`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import shutil
import tarfile
from pathlib import Path

from ..catalogue import Catalogue
from .places import Places, archive_day, places


@dataclasses.dataclass(frozen=True)
class Archival:
    name: str
    closed: dt.datetime  # when their last window closed
    parts: tuple[tuple[str, Path], ...]  # (name inside the archive, file or folder)


@dataclasses.dataclass
class RetentionRun:
    archived: list[tuple[Archival, Path]] = dataclasses.field(default_factory=list)
    deleted: list[Path] = dataclasses.field(default_factory=list)
    dry_run: bool = False

    def lines(self) -> list[str]:
        verb = "would " if self.dry_run else ""
        out = [
            f"{verb}archive {a.name} (access closed {a.closed:%Y-%m-%d %H:%M %Z}): "
            f"{', '.join(part for part, _ in a.parts)} -> {path}"
            for a, path in self.archived
        ]
        return out + [f"{verb}delete {path}" for path in self.deleted]


def _parts(where: Places, name: str) -> list[tuple[str, Path]]:
    home = where.home(name)
    parts = [("home", home)] if home and home.is_dir() else []
    return parts + where.exchange_folders(name) + where.nbgrader_folders(name)


def due_archivals(catalogue: Catalogue, now: dt.datetime) -> list[Archival]:
    """Trainees whose last window closed more than archive_after ago and who still have files."""
    where, after = places(catalogue), dt.timedelta(seconds=catalogue.site.retention.archive_after)
    due = []
    for name in catalogue.people():
        closed = catalogue.closed_for(name, now)
        if closed is None:
            continue
        last = max(closes for _, _, closes in closed.windows)
        if last + after <= now and (parts := _parts(where, name)):
            due.append(Archival(name, last, tuple(parts)))
    return due


def due_deletions(catalogue: Catalogue, now: dt.datetime) -> list[Path]:
    """Archives made more than delete_after ago (the day in their name, 00:00 UTC)."""
    folder, keep = places(catalogue).archives, dt.timedelta(seconds=catalogue.site.retention.delete_after)
    due = []
    for path in sorted(folder.iterdir()) if folder.is_dir() else ():
        day = archive_day(path)
        if day and dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC) + keep <= now:
            due.append(path)
    return due


def archive_path(folder: Path, name: str, now: dt.datetime) -> Path:
    """<name>-<day>.tar.zst, or -2, -3... if that day's exists (files made after a first run)."""
    base = f"{name}-{now.astimezone(dt.UTC):%Y-%m-%d}"
    path, n = folder / f"{base}.tar.zst", 1
    while path.exists():
        n += 1
        path = folder / f"{base}-{n}.tar.zst"
    return path


def write_archive(path: Path, parts: tuple[tuple[str, Path], ...]) -> None:
    """A tar stream compressed by zstandard, mode 0600, moved into place once complete. Links are
    kept as links (never followed), owners and modes as they were."""
    import zstandard

    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.part")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "wb") as f, zstandard.ZstdCompressor(level=10).stream_writer(f) as z:
            with tarfile.open(fileobj=z, mode="w|") as tar:
                for arcname, source in parts:
                    tar.add(source, arcname=arcname)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def run_retention(
    catalogue: Catalogue, now: dt.datetime | None = None, dry_run: bool = False
) -> RetentionRun:
    now = now or dt.datetime.now(dt.UTC)
    run = RetentionRun(dry_run=dry_run)
    folder = places(catalogue).archives
    for archival in due_archivals(catalogue, now):
        path = archive_path(folder, archival.name, now)
        if not dry_run:
            write_archive(path, archival.parts)
            for _, source in archival.parts:  # only once the archive is whole
                shutil.rmtree(source)
        run.archived.append((archival, path))
    for path in due_deletions(catalogue, now):
        if not dry_run:
            path.unlink()
        run.deleted.append(path)
    return run
