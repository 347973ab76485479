"""Which demos the gallery shows, and the one way a URL becomes a notebook file.

A demo exists only if a course declares it in course.yaml (``demos:``); its file must be a
regular file inside that course's demos/ folder once every symlink is resolved. Anything else
is "not found": the gallery never turns a request path into a file path by itself
(CVE-2024-30265 class: encoded ../, absolute paths, symlinks out of the folder).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from hub_config.catalogue import Catalogue
from hub_config.schema import Course, Demo

NOTEBOOK_SUFFIX = ".ipynb"


@dataclasses.dataclass(frozen=True)
class DemoEntry:
    course: Course
    demo: Demo

    @property
    def key(self) -> str:
        """The demo's address under the gallery: <slug>/<notebook without .ipynb>."""
        return f"{self.course.slug}/{self.demo.notebook.removesuffix(NOTEBOOK_SUFFIX)}"

    @property
    def notebook_path(self) -> str:
        """The notebook relative to the courses folder (the gallery's root)."""
        return f"{self.course.slug}/demos/{self.demo.notebook}"

    def is_member(self, groups: frozenset[str] | set[str]) -> bool:
        """From the visitor's hub groups, which the course sync keeps equal to the course's roster
        from all its sources (hub_config/roster.py): the gallery's account cannot read the roster
        files in the hub's data folder, and needs not."""
        return self.course.learner_group in groups or self.course.staff_group in groups


def demo_entries(catalogue: Catalogue) -> list[DemoEntry]:
    """Every declared demo, in course order then declaration order."""
    return [DemoEntry(course, demo) for course in catalogue.courses for demo in course.demos]


def find_demo(catalogue: Catalogue, key: str) -> DemoEntry | None:
    """The declared demo at ``key`` (exact match, no normalisation), or None."""
    return next((e for e in demo_entries(catalogue) if e.key == key), None)


def notebook_file(courses_dir: Path, entry: DemoEntry) -> Path | None:
    """The demo's file if it is a regular file inside <courses_dir>/<slug>/demos/ after every
    symlink is resolved; None otherwise (missing, a folder, or leading outside)."""
    demos_dir = (Path(courses_dir) / entry.course.slug / "demos").resolve()
    try:
        target = (demos_dir / entry.demo.notebook).resolve(strict=True)
    except (OSError, RuntimeError):  # missing, or a symlink loop
        return None
    if not target.is_relative_to(demos_dir) or not target.is_file():
        return None
    return target


def visible_to(entry: DemoEntry, username: str | None, admin: bool = False, groups=frozenset()) -> str:
    """What the gallery does for this visitor (``groups``: their hub groups): 'open', 'login'
    (anonymous on a private demo) or 'forbidden' (logged in, but the demo is for the course's
    members)."""
    if entry.demo.public:
        return "open"
    if username is None:
        return "login"
    if entry.demo.members_only and not (admin or entry.is_member(groups)):
        return "forbidden"
    return "open"
