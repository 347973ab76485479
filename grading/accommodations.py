"""Accommodations: a learner's extra time in a course (tiers-temps) and their extensions per
assignment, and the deadline each gives them.

Health-related personal data: never in course.yaml or git. Kept in the course's grading folder
(0700, the hub's account), so `ailys backup` takes it with that folder, the graded kernels never
see it (the sandbox hides the folder) and `ailys person export/forget` read and erase it:

    <data_dir>/grading/<slug>/accommodations.json       mode 0600
    {"course": "<slug>",
     "learners": {"ann": {"extra_time": "33%",            # or "30m", or null
                          "extensions": {"ps1": "2d"},    # per assignment, on top of the extra time
                          "updated": "2026-12-03T17:00:00+00:00", "by": "prof"}},
     "extensions": {"ann": {"ps1": 173988}}}              # seconds after due: for the gradebook

A learner's deadline is ``due + extra time + extension``; a percentage is that share of the
assignment's window, ``opens`` to ``due`` (course.yaml), and gives nothing to an assignment
without ``opens``. The "extensions" table is what nbgrader's gradebook gets as each submission's
``extension`` (so formgrader shows the learner's own deadline and nbgrader's late penalties follow
it); it is recomputed from the course file at each change and each start of the grading service.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import re
from collections.abc import Iterator
from pathlib import Path

from hub_config import roster
from hub_config.units import format_duration, parse_duration

FILE = "accommodations.json"
MAX_PERCENT = 200.0  # more than triple the time is no longer extra time: say so, do not store it
MAX_EXTRA = 7 * 86400
MAX_EXTENSION = 180 * 86400  # half a year
_PERCENT = re.compile(r"^(\d+(?:\.\d+)?)\s*%$")


class AccommodationError(ValueError):
    """Refused: the message names the field and the reason."""


@dataclasses.dataclass(frozen=True)
class ExtraTime:
    percent: float = 0.0  # of the window opens..due
    seconds: int = 0

    def of(self, opens: dt.datetime | None, due: dt.datetime) -> dt.timedelta:
        if self.percent:
            if opens is None:
                return dt.timedelta(0)
            return (due - opens) * (self.percent / 100)
        return dt.timedelta(seconds=self.seconds)


def _duration(field: str, text, most: int) -> int:
    written = str(text).strip()
    if written.startswith("-"):
        raise AccommodationError(f"{field}: {written!r} is negative: extra time can only be added")
    try:
        seconds = parse_duration(written)
    except ValueError as err:
        raise AccommodationError(f"{field}: {err}") from None
    if seconds <= 0:
        raise AccommodationError(f"{field}: {written!r} is no time at all: give more than 0s, or remove it")
    if seconds > most:
        raise AccommodationError(f"{field}: {written!r} is more than {format_duration(most)}: surely a typo")
    return seconds


def parse_extra_time(text) -> ExtraTime:
    """``33%`` (of the window opens..due) or a duration (``30m``, ``1h30m``, ``01:30:00``)."""
    written = str(text).strip()
    if written.startswith("-"):
        raise AccommodationError(f"extra_time: {written!r} is negative: extra time can only be added")
    if "%" in written:
        m = _PERCENT.match(written)
        if not m:
            raise AccommodationError(f"extra_time: {written!r} is not a percentage: write it like 33%")
        percent = float(m[1])
        if not 0 < percent <= MAX_PERCENT:
            raise AccommodationError(
                f"extra_time: {written} is outside 0% to {MAX_PERCENT:g}% (exclusive of 0): surely a typo"
            )
        return ExtraTime(percent=percent)
    try:
        return ExtraTime(seconds=_duration("extra_time", written, MAX_EXTRA))
    except AccommodationError as err:
        if "is not a duration" not in str(err):
            raise
        raise AccommodationError(
            f"extra_time: {written!r} is neither a percentage (such as 33%) nor a duration "
            "(such as 30m, 1h30m or 01:30:00)"
        ) from None


def parse_extension(text) -> int:
    """An extension's duration in seconds (``2d``, ``36h``, ``1-12:00``)."""
    return _duration("extension", text, MAX_EXTENSION)


def aware(moment: dt.datetime | None) -> dt.datetime | None:
    """A deadline without a zone is read as UTC, as everywhere in grading/."""
    if moment is not None and moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment


def effective_due(
    due: dt.datetime | None,
    opens: dt.datetime | None = None,
    extra_time: str | None = None,
    extension: str | None = None,
) -> dt.datetime | None:
    """The learner's deadline: ``due`` plus their extra time plus their extension (None: no due)."""
    due = aware(due)
    if due is None:
        return None
    extra = parse_extra_time(extra_time).of(aware(opens), due) if extra_time else dt.timedelta(0)
    more = dt.timedelta(seconds=parse_extension(extension)) if extension else dt.timedelta(0)
    return due + extra + more


def due_for(course, record: dict | None, assignment: str) -> dt.datetime | None:
    """The deadline of ``assignment`` of ``course`` for the learner whose ``record`` this is."""
    a = next((a for a in course.assignments if a.name == assignment), None)
    if a is None:
        return None
    record = record or {}
    return effective_due(
        a.due, a.opens, record.get("extra_time"), (record.get("extensions") or {}).get(a.name)
    )


def extensions_of(course, records: dict[str, dict]) -> dict[str, dict[str, int]]:
    """Seconds after due, by learner and assignment: what nbgrader's gradebook records."""
    out: dict[str, dict[str, int]] = {}
    for learner, record in sorted(records.items()):
        for a in course.assignments:
            if a.due is None:
                continue
            late = (due_for(course, record, a.name) - aware(a.due)).total_seconds()
            if late > 0:
                out.setdefault(learner, {})[a.name] = int(late)
    return out


# --- the file -----------------------------------------------------------------------------------


def path_of(course_dir: Path) -> Path:
    return Path(course_dir) / FILE


def read(course_dir: Path) -> dict:
    """The course's file, or an empty one."""
    data = roster.read_json(path_of(course_dir), None) or {}
    if not isinstance(data.get("learners", {}), dict):
        raise AccommodationError(f"{path_of(course_dir)}: no table 'learners': not a file the hub writes")
    return {"course": Path(course_dir).name, "learners": {}, "extensions": {}, **data}


def records(course_dir: Path) -> dict[str, dict]:
    return read(course_dir)["learners"]


def extension_seconds(course_dir: Path, learner: str, assignment: str) -> int:
    """The gradebook's extension of this learner's submission of ``assignment`` (0: none)."""
    return int(read(course_dir)["extensions"].get(learner, {}).get(assignment, 0))


@contextlib.contextmanager
def _locked(course_dir: Path) -> Iterator[None]:
    Path(course_dir).parent.mkdir(mode=0o711, parents=True, exist_ok=True)  # as prepare_course makes it
    Path(course_dir).mkdir(mode=0o700, exist_ok=True)
    with open(Path(course_dir) / ".accommodations.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _write(course_dir: Path, course, data: dict) -> None:
    data["extensions"] = extensions_of(course, data["learners"])
    roster.write_json(path_of(course_dir), data)  # 0600, atomic


def check_request(course, learners, learner: str, assignment: str | None) -> None:
    if learner not in learners:
        raise AccommodationError(f"learner: {learner!r} is not a learner of course {course.slug}")
    if assignment is not None and assignment not in {a.name for a in course.assignments}:
        known = ", ".join(a.name for a in course.assignments) or "none"
        raise AccommodationError(
            f"assignment: {assignment!r} is not an assignment of course {course.slug} (its assignments: {known})"
        )


def set_accommodation(
    course_dir: Path,
    course,
    learners,
    learner: str,
    *,
    extra_time: str | None = None,
    assignment: str | None = None,
    extension: str | None = None,
    by: str,
    now: dt.datetime | None = None,
) -> dict:
    """Set the learner's extra time and/or one assignment's extension; the learner's record.
    Nothing is written unless every value is valid."""
    check_request(course, learners, learner, assignment)
    if extension is not None and assignment is None:
        raise AccommodationError("extension: an extension is for one assignment: name it")
    if extra_time is None and extension is None:
        raise AccommodationError("extra_time: give extra time, or an assignment's extension, or both")
    if extra_time is not None:
        extra_time = str(extra_time).strip()
        parse_extra_time(extra_time)
    if extension is not None:
        extension = str(extension).strip()
        parse_extension(extension)
    with _locked(course_dir):
        data = read(course_dir)
        record = data["learners"].setdefault(learner, {"extra_time": None, "extensions": {}})
        if extra_time is not None:
            record["extra_time"] = extra_time
        if extension is not None:
            record["extensions"][assignment] = extension
        record["updated"] = (now or dt.datetime.now(dt.UTC)).isoformat(timespec="seconds")
        record["by"] = by
        _write(course_dir, course, data)
    return record


def remove(course_dir: Path, course, learner: str, assignment: str | None = None) -> bool:
    """Remove the learner's accommodations, or one assignment's extension; whether any was there."""
    with _locked(course_dir):
        data = read(course_dir)
        record = data["learners"].get(learner)
        if record is None:
            return False
        if assignment is None:
            del data["learners"][learner]
        elif record["extensions"].pop(assignment, None) is None:
            return False
        elif record.get("extra_time") is None and not record["extensions"]:
            del data["learners"][learner]
        _write(course_dir, course, data)
    return True


def forget(course_dir: Path, learner: str) -> bool:
    """Erase a person's record (`ailys person forget`), even of a course no longer in the catalogue."""
    with _locked(course_dir):
        data = read(course_dir)
        found = data["learners"].pop(learner, None) is not None
        found = data["extensions"].pop(learner, None) is not None or found
        if found:
            roster.write_json(path_of(course_dir), data)
    return found


def refresh(course_dir: Path, course) -> None:
    """Recompute the gradebook's extensions from course.yaml (its due or opens may have changed)."""
    if not path_of(course_dir).exists():
        return
    with _locked(course_dir):
        _write(course_dir, course, read(course_dir))


def sync_gradebook(gb, course_dir: Path) -> int:
    """Give every submission in the gradebook its learner's extension (nbgrader's own column),
    and none to the others; how many rows changed."""
    table = read(course_dir)["extensions"]
    changed = 0
    for assignment in gb.assignments:
        for sub in assignment.submissions:
            seconds = table.get(sub.student.id, {}).get(assignment.name, 0)
            wanted = dt.timedelta(seconds=seconds) if seconds else None
            if sub.extension != wanted:
                sub.extension, changed = wanted, changed + 1
    if changed:
        gb.db.commit()
    return changed
