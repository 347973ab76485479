"""Load and validate a site file and its course folders into typed models.

Every problem is collected, not only the first: a file with three mistakes gets three
lines, each naming the file, the key path and the reason. Nothing downstream ever sees
an unvalidated value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from . import roster
from .schema import Course, Site, submodel, team_problems
from .units import format_duration

ModelT = TypeVar("ModelT", bound=BaseModel)


@dataclasses.dataclass(frozen=True)
class Problem:
    file: Path
    key: str
    reason: str

    def __str__(self) -> str:
        return f"{self.file}: {self.key or '(top level)'}: {self.reason}"


class CatalogueError(Exception):
    """The site or a course is invalid; ``problems`` lists every reason."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class UnknownCourse(LookupError):
    """No course of that slug in the catalogue."""

    def __init__(self, slug: str, catalogue: Catalogue):
        self.slug = slug
        known = ", ".join(c.slug for c in catalogue.courses) or "none"
        super().__init__(f"no course {slug!r} in {catalogue.courses_dir} (courses: {known})")


@dataclasses.dataclass(frozen=True)
class Catalogue:
    """A validated site and its courses. Paths are absolute."""

    site_file: Path
    site: Site
    courses: tuple[Course, ...]
    # Learners known outside course.yaml (directory groups, cohorts), as last read from data_dir
    sources: roster.Sources = dataclasses.field(default_factory=roster.Sources)

    @property
    def data_dir(self) -> Path:
        return (self.site_file.parent / self.site.data_dir).resolve()

    @property
    def courses_dir(self) -> Path:
        return (self.site_file.parent / self.site.courses_dir).resolve()

    def course(self, slug: str) -> Course:
        """The course of that slug, or UnknownCourse naming the known ones."""
        for c in self.courses:
            if c.slug == slug:
                return c
        raise UnknownCourse(slug, self)

    def learners(self, course: Course) -> tuple[str, ...]:
        """The course's learners from all its sources (roster.learners_of)."""
        return roster.learners_of(course, self.sources)

    def people(self) -> list[str]:
        """Everyone the site knows: admins, then each course's staff, mentors and learners, sorted."""
        names = set(self.site.authentication.admin_users)
        for course in self.courses:
            names.update(course.instructors, course.mentors, self.learners(course))
        return sorted(names)

    def closed_for(self, username: str, now: dt.datetime | None = None) -> roster.Closed | None:
        """Why ``username`` may not log in at ``now`` (their short courses' windows), or None."""
        if username in self.site.authentication.admin_users:
            return None
        auth = self.site.authentication
        courses = [(c, self.learners(c)) for c in self.courses]
        return roster.closed_for(
            username, courses, auth.trainee_access, self.site.timezone, now or dt.datetime.now(dt.UTC)
        )

    def may_log_in(self, username: str, now: dt.datetime | None = None) -> bool:
        """A person of the site whose courses' windows are open (admins always)."""
        return username in self.people() and self.closed_for(username, now) is None


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (YAML would keep the last)."""

    def construct_mapping(self, node, deep=False):
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep)


def _read_yaml(path: Path) -> tuple[Any, list[Problem]]:
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_UniqueKeyLoader)
    except OSError as err:
        return None, [Problem(path, "", f"cannot be read: {err.strerror}")]
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = getattr(err, "problem", None) or str(err)
        return None, [Problem(path, "", f"is not valid YAML: {where}{reason}")]
    if not isinstance(data, dict):
        return None, [Problem(path, "", "must be a mapping of keys to values")]
    return data, []


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The model class that owns the key at ``loc`` (to list its allowed keys)."""
    for part in loc:
        if isinstance(part, int):
            continue
        field = model.model_fields.get(part)
        model = submodel(field.annotation) if field else None
        if model is None:
            return None
    return model


def _problems(path: Path, model: type[BaseModel], err: ValidationError) -> list[Problem]:
    problems = []
    for e in err.errors():
        loc = tuple(e["loc"])
        key = ".".join(str(p) if isinstance(p, str) else f"[{p}]" for p in loc).replace(".[", "[")
        if e["type"] == "extra_forbidden":
            owner = _model_at(model, loc[:-1])
            allowed = ", ".join(owner.model_fields) if owner else ""
            reason = f"unknown key (allowed here: {allowed})"
        elif e["type"] == "missing":
            reason = "is required"
        else:
            reason = e["msg"].removeprefix("Value error, ")
            if e["type"] not in ("value_error",) and "input" in e and not isinstance(e["input"], dict):
                reason += f" (got {e['input']!r})"
        problems.append(Problem(path, key, reason))
    return problems


def _load(path: Path, model: type[ModelT]) -> ModelT:
    data, problems = _read_yaml(path)
    if problems:
        raise CatalogueError(problems)
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise CatalogueError(_problems(path, model, err)) from None


def load_site(site_file: Path) -> Site:
    site_file = Path(site_file).absolute()
    site = _load(site_file, Site)
    if site.name != site_file.stem:
        raise CatalogueError(
            [Problem(site_file, "name", f"{site.name!r} differs from the file name {site_file.stem!r}")]
        )
    return site


def load_course(course_file: Path) -> Course:
    course = _load(course_file, Course)
    folder = course_file.parent.name
    if course.slug != folder:
        raise CatalogueError(
            [Problem(course_file, "slug", f"{course.slug!r} differs from its folder's name {folder!r}")]
        )
    return course


def _course_folders(courses_dir: Path | str) -> list[str]:
    with os.scandir(courses_dir) as entries:  # a DirEntry knows whether it is a folder without a stat
        return sorted(d.name for d in entries if not d.name.startswith((".", "_")) and d.is_dir())


def course_files(courses_dir: Path) -> list[Path]:
    """One course.yaml per folder; folders starting with '.' or '_' are skipped (drafts)."""
    return [Path(courses_dir) / name / "course.yaml" for name in _course_folders(courses_dir)]


def _over_site_limits(site_file: Path, site: Site, course_file: Path, course: Course) -> list[Problem]:
    """What a valid course asks for beyond what its site allows a course of its kind."""
    limit, asked = site.spawner.max_walltime[course.kind], course.resources.walltime
    if asked <= limit:
        return []
    reason = (
        f"{format_duration(asked)} is over the site's maximum for {course.kind} courses, "
        f"{format_duration(limit)} (spawner.max_walltime.{course.kind} in {site_file.name})"
    )
    return [Problem(course_file, "resources.walltime", reason)]


# The course environments: images/<env>/environment.yaml, beside this package (built by `ailys image`).
ENVIRONMENTS_DIR = Path(__file__).resolve().parent.parent / "images"


def environments(specs_dir: Path = ENVIRONMENTS_DIR) -> list[str]:
    """The environments that exist: folders of specs_dir holding an environment.yaml."""
    return sorted(p.parent.name for p in Path(specs_dir).glob("*/environment.yaml"))


def _unknown_environment(course_file: Path, course: Course, known: list[str]) -> list[Problem]:
    if course.environment in known:
        return []
    reason = (
        f"{course.environment!r} names no environment in {ENVIRONMENTS_DIR} "
        f"(environments: {', '.join(known) or 'none'})"
    )
    return [Problem(course_file, "environment", reason)]


def _footprint_port_of_a_formgrader(site_file: Path, site: Site, courses) -> Problem | None:
    """The formgraders take one port per course with assignments from formgraders.port on (the
    site schema checks the first; the range needs the courses)."""
    port, first = site.energy.service.port, site.formgraders.port
    graded = sorted(c.slug for c in courses if c.assignments)
    if site.energy.service.enabled and first <= port < first + len(graded):
        reason = f"port {port} is already used by the grading service of {graded[port - first]}"
        return Problem(site_file, "energy.service.port", f"{reason} (formgraders.port {first} and on)")
    return None


def load_catalogue(site_file: Path | str, with_sources: bool = True) -> Catalogue:
    """Load the site and all its courses, or raise CatalogueError listing every problem. Without
    ``with_sources``, learners are those the course files list (``course_files_only``)."""
    site_file = Path(site_file).absolute()
    site = load_site(site_file)
    courses_dir = site_file.parent / site.courses_dir
    if not courses_dir.is_dir():
        raise CatalogueError([Problem(site_file, "courses_dir", f"{courses_dir} is not a folder")])
    problems: list[Problem] = []
    courses: dict[str, Course] = {}
    files: dict[str, Path] = {}
    known_environments = environments()
    for course_file in course_files(courses_dir):
        try:
            course = load_course(course_file)
        except CatalogueError as err:
            problems.extend(err.problems)
            continue
        if course.slug in courses:
            problems.append(
                Problem(course_file, "slug", f"{course.slug!r} is already used by another course")
            )
            continue
        if over := _over_site_limits(site_file, site, course_file, course):
            problems.extend(over)
            continue
        if unknown := _unknown_environment(course_file, course, known_environments):
            problems.extend(unknown)
            continue
        courses[course.slug] = course
        files[course.slug] = course_file
    if clash := _footprint_port_of_a_formgrader(site_file, site, courses.values()):
        problems.append(clash)
    data_dir = (site_file.parent / site.data_dir).resolve()
    sources = roster.Sources()
    try:
        if with_sources:
            sources = roster.read_sources(data_dir)
    except ValueError as err:
        problems.append(Problem(site_file, "data_dir", str(err)))
    except OSError as err:
        problems.append(Problem(site_file, "data_dir", f"the roster files cannot be read: {err}"))
    for slug, course in courses.items():
        # Without the roster (course_files_only), team members from other sources are not known.
        learners = roster.learners_of(course, sources) if with_sources else None
        for key, reason in team_problems(course.teams, learners, site.teams, site_file.name):
            problems.append(Problem(files[slug], key, reason))
    if problems:
        raise CatalogueError(problems)
    return Catalogue(site_file, site, tuple(courses.values()), sources)


def course_files_only(site_file: Path | str) -> Catalogue:
    """The catalogue from the site and course files alone, for a part that runs under an account
    that may not read the hub's data folder (the gallery): its learners are those listed."""
    return load_catalogue(site_file, with_sources=False)


# A file changed less than this before we looked may change again within the same mtime tick
# (coarse on some filesystems): such a fingerprint is not trusted, the next call parses again.
RACY_SECONDS = 2.0
_RELOADING = threading.Lock()

Fingerprint = tuple[tuple[str, int, int, int] | tuple[str, None], ...]


def _stat_key(path: str) -> tuple[str, int, int, int] | tuple[str, None]:
    try:
        st = os.stat(path)
    except OSError:
        return (path, None)  # missing or unreadable: its appearance is a change too
    return (path, st.st_mtime_ns, st.st_size, st.st_ino)


def fingerprint(site_file: Path | str, courses_dir: Path | str) -> Fingerprint:
    """What the site and course files look like on disk: one stat per file, the folder listed
    once. Plain strings, no Path objects: this runs at every login."""
    top = os.fspath(courses_dir)
    try:
        files = [os.path.join(top, name, "course.yaml") for name in _course_folders(top)]
    except OSError:
        files = []
    return (_stat_key(os.fspath(site_file)), *map(_stat_key, files))


def sources_fingerprint(data_dir: Path | str) -> Fingerprint:
    """The roster files of the site's data (roster.source_files). We write each by renaming a new
    file over it, so every change is a new inode: trusted at once, never racy."""
    return tuple(map(_stat_key, roster.source_files(data_dir)))


class LiveCatalogue:
    """The catalogue as it is on disk now, for parts of the running hub (logins, launch forms).

    Parsed again only when the site file or a course file changes, appears or goes (modification
    time, size, inode): an unchanged catalogue costs a listing of the courses folder and a stat per
    file. A course folder broken while the hub runs is logged once and ignored: the last valid
    catalogue stays in force, so one mistake never locks people out. When only the roster files
    (directory groups, cohorts: roster.py) change, only they are read again, not the courses.

    ``load`` is what parses (load_catalogue); tests and benchmarks may pass their own. Without
    ``sources`` (the gallery, whose account may not read the hub's data folder) the roster files
    are neither read nor watched.
    """

    def __init__(
        self,
        site_file: Path | str,
        log,
        load: Callable[[Path], Catalogue] = load_catalogue,
        sources: bool = True,
    ):
        self.site_file = Path(site_file).absolute()
        self.log = log
        self.load = load if sources else course_files_only
        self.sources = sources
        # (last valid catalogue, its courses and data folders, the files as last parsed if
        # trusted, the roster files as last read), replaced whole so that a reader in another
        # thread (the exchange's graders) never sees a mix.
        self._state: tuple[Catalogue | None, tuple[str, str], Fingerprint | None, Fingerprint] = (
            None,
            ("", ""),
            None,
            (),
        )
        self._failed: Fingerprint | None = None  # the broken state last logged

    def _sources_now(self, data_dir: str) -> Fingerprint:
        return sources_fingerprint(data_dir) if self.sources else ()

    def current(self) -> Catalogue:
        last, folder, seen, seen_sources = self._state
        if last is not None and seen is not None and fingerprint(self.site_file, folder[0]) == seen:
            if self._sources_now(folder[1]) == seen_sources:
                return last
        with _RELOADING:  # module-wide: traitlets deep-copies this object, and a lock cannot be copied
            last, folder, seen, seen_sources = self._state
            if last is not None and seen is not None and fingerprint(self.site_file, folder[0]) == seen:
                now = self._sources_now(folder[1])
                if now == seen_sources:
                    return last  # another thread has just read it
                return self._reread_sources(last, folder, seen, now)
            return self._reload(last, folder)

    def _reread_sources(
        self, last: Catalogue, folder: tuple[str, str], seen: Fingerprint, now: Fingerprint
    ) -> Catalogue:
        try:
            catalogue = dataclasses.replace(last, sources=roster.read_sources(Path(folder[1])))
        except (ValueError, OSError) as err:
            if now != self._failed:
                self.log.error("Roster files unreadable, keeping the previous rosters: %s", err)
            self._failed = now
            self._state = (last, folder, seen, now)
            return last
        self._failed = None
        self._state = (catalogue, folder, seen, now)
        return catalogue

    def _reload(self, last: Catalogue | None, folder: tuple[str, str]) -> Catalogue:
        started = time.time_ns()
        sources = self._sources_now(folder[1]) if folder[1] else ()
        try:
            catalogue = self.load(self.site_file)
        except CatalogueError as err:
            if last is None:
                raise
            state = fingerprint(self.site_file, folder[0])
            if state != self._failed:  # once per broken state, not at every login
                self.log.error("Course catalogue invalid, keeping the previous one:\n%s", err)
            self._failed = state
            self._state = (last, folder, state if _settled(state, started) else None, sources)
            return last
        # Taken after parsing, but trusted only if every file is older than the parse: an edit
        # made meanwhile is newer, so the next call parses again. The roster files' state is taken
        # before parsing: one written meanwhile differs from it, so the next call reads it.
        folder = (os.fspath(catalogue.courses_dir), os.fspath(catalogue.data_dir))  # resolved once
        if not sources:
            sources = self._sources_now(folder[1])
        state = fingerprint(self.site_file, folder[0])
        self._failed = None
        self._state = (catalogue, folder, state if _settled(state, started) else None, sources)
        return catalogue


def _settled(fp: Fingerprint, started_ns: int) -> bool:
    limit = started_ns - int(RACY_SECONDS * 1e9)
    return all(key[1] is None or key[1] < limit for key in fp)
