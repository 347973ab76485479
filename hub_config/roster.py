"""Who is in a course, and who may log in now: the one place that computes both.

A course's learners are the union of its sources: the names course.yaml lists, the members of its
directory group (``learners_from.ldap_group``, read by the course sync), the holders of its
provider group (``learners_from.oidc_group``, recorded at their login) and the trainees of its
cohort (``ailys cohort import``). The sync, the authenticator (check_allowed, refresh_user), the
groups and roles, the gallery and the grading services all ask ``Catalogue.learners`` (which calls
``learners_of``) rather than reading ``course.learners``.

The sources outside course.yaml live in the site's data, never in git (personal data must be
erasable): ``<data_dir>/rosters/<source>.json`` holds ``{group: [username, ...]}`` as last read
from the directory or the provider, and ``<data_dir>/cohorts/<slug>.json`` a course's trainees.

Standard library and the schema only: pure functions on what was read, and one reader.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from zoneinfo import ZoneInfo

from .schema import AccessWindow, Course, is_reserved

ROSTERS = "rosters"  # <data_dir>/rosters/ldap.json, oidc.json
COHORTS = "cohorts"  # <data_dir>/cohorts/<slug>.json: {"trainees": [{"username": ..., ...}]}
SOURCES = ("ldap", "oidc")


@dataclasses.dataclass(frozen=True)
class Sources:
    """Members known outside course.yaml, as last written to the site's data."""

    groups: Mapping[str, Mapping[str, frozenset[str]]] = dataclasses.field(default_factory=dict)
    cohorts: Mapping[str, frozenset[str]] = dataclasses.field(default_factory=dict)  # slug -> trainees

    def trainees(self, slug: str) -> frozenset[str]:
        return self.cohorts.get(slug, frozenset())


def learners_of(course: Course, sources: Sources) -> tuple[str, ...]:
    """Every learner of ``course``: those listed in course.yaml in their order, then the others
    sorted. An instructor of the course is never also its learner; a system account's name (a
    directory may hold one) is never a learner."""
    extra: set[str] = set(sources.trainees(course.slug))
    if course.learners_from.ldap_group:
        extra |= sources.groups.get("ldap", {}).get(course.learners_from.ldap_group, frozenset())
    if course.learners_from.oidc_group:
        extra |= sources.groups.get("oidc", {}).get(course.learners_from.oidc_group, frozenset())
    listed = [n for n in course.learners]
    others = sorted(n for n in extra - set(listed) - set(course.instructors) if not is_reserved(n))
    return (*listed, *others)


# --- access windows ---------------------------------------------------------------------------


def moment(value: dt.date | dt.datetime, tz: str, last_day: bool = False) -> dt.datetime:
    """A course date or moment as an aware datetime: a day starts at 00:00 of the site's zone (or,
    with ``last_day``, ends at the next day's 00:00); a moment without a zone is in the site's."""
    zone = ZoneInfo(tz)
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=zone)
    day = value + dt.timedelta(days=1) if last_day else value
    return dt.datetime.combine(day, dt.time(), tzinfo=zone)


def access_window(course: Course, default: AccessWindow, tz: str) -> tuple[dt.datetime, dt.datetime]:
    """From when to when the trainees of a short course may log in."""
    window = course.access or default
    start = moment(course.start, tz) - dt.timedelta(seconds=window.before)
    end = moment(course.end, tz, last_day=True) + dt.timedelta(seconds=window.after)
    return start, end


@dataclasses.dataclass(frozen=True)
class Closed:
    """Why ``username`` may not log in now: the windows of their courses, all closed."""

    username: str
    windows: tuple[tuple[str, dt.datetime, dt.datetime], ...]  # (course slug, opens, closes)


def closed_for(
    username: str,
    courses: Iterable[tuple[Course, tuple[str, ...]]],
    default: AccessWindow,
    tz: str,
    now: dt.datetime,
) -> Closed | None:
    """None if ``username`` may log in at ``now`` as far as access windows go; otherwise why not.

    Only learners whose every course is a short course have a window: an instructor, or a learner
    of an academic course or a project team, is not limited by the dates of a short course they
    also follow. ``courses`` is each course with its learners (``Catalogue.learners``)."""
    windows = []
    for course, learners in courses:
        if username in course.instructors:
            return None
        if username not in learners:
            continue
        if course.kind != "short-course":
            return None
        opens, closes = access_window(course, default, tz)
        if opens <= now < closes:
            return None
        windows.append((course.slug, opens, closes))
    return Closed(username, tuple(windows)) if windows else None


# --- reading and writing the sources -------------------------------------------------------------


def read_sources(data_dir: Path) -> Sources:
    """The sources as last written. A missing file is an empty source; a file that is not what we
    write is an error naming it (never a silently empty course)."""
    groups = {}
    for source in SOURCES:
        data = read_json(data_dir / ROSTERS / f"{source}.json", {})
        groups[source] = {str(g): frozenset(map(str, users)) for g, users in data.items()}
    cohorts = {}
    folder = data_dir / COHORTS
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        data = read_json(path, {"trainees": []})
        cohorts[path.stem] = frozenset(t["username"] for t in data.get("trainees", []))
    return Sources(groups, cohorts)


def source_files(data_dir: Path) -> list[str]:
    """The files ``read_sources`` reads (LiveCatalogue re-reads when one changes)."""
    files = [os.path.join(data_dir, ROSTERS, f"{s}.json") for s in SOURCES]
    folder = os.path.join(data_dir, COHORTS)
    try:
        files += sorted(os.path.join(folder, n) for n in os.listdir(folder) if n.endswith(".json"))
    except OSError:
        pass
    return files


def write_groups(data_dir: Path, source: str, groups: Mapping[str, Iterable[str]]) -> bool:
    """Replace what ``source`` (ldap, oidc) says of its groups; True if it changed."""
    if source not in SOURCES:
        raise ValueError(f"unknown roster source {source!r}; known: {', '.join(SOURCES)}")
    path = data_dir / ROSTERS / f"{source}.json"
    data = {g: sorted(set(users)) for g, users in sorted(groups.items())}
    if read_json(path, None) == data:
        return False
    write_json(path, data)
    return True


def write_json(path: Path, data) -> None:
    """Atomically, readable by the hub's account only (these files name people)."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False, indent=1)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


_seen: dict[Path, tuple[tuple[int, int, int], object]] = {}


def read_json_cached(path: Path, missing):
    """``read_json``, parsed again only when the file changed (every write replaces it: a new
    inode), so a login reads a file of thousands of people at the cost of a stat. The result is
    shared: never modify it."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return missing
    key = (st.st_ino, st.st_mtime_ns, st.st_size)
    seen = _seen.get(path)
    if seen is None or seen[0] != key:
        seen = _seen[path] = (key, read_json(path, missing))
    return seen[1]


def read_json(path: Path, missing):
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return missing
    try:
        return json.loads(text)
    except ValueError as err:
        raise ValueError(f"{path}: not the JSON the hub writes ({err})") from None
