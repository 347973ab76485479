"""Where the platform keeps what it holds on a person, from the site's settings and nothing else.

Every path is built from a checked username (``check_person``), so a name can never reach outside
its folder. Nothing here reads or writes a person's data; the other modules of the package do.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from pathlib import Path

from pydantic import TypeAdapter, ValidationError

from .. import roster
from ..catalogue import Catalogue
from ..schema import Person

LOGINS = "logins"  # <data_dir>/logins/<name>.jsonl
ARCHIVES = "archives"  # <data_dir>/archives/<name>-<YYYY-MM-DD>[-N].tar.zst
EXCHANGE = "exchange"  # grading/exchange/service.py keeps its store there
# nbgrader's own per-student folders in a course's grading folder (grading/courses.py):
# <course>/<kind>/<student>/<assignment>/, nbgrader's default directory names.
NBGRADER_KINDS = ("submitted", "autograded", "feedback")
_ARCHIVE = re.compile(r"^(?P<name>.+)-(?P<day>\d{4}-\d{2}-\d{2})(-\d+)?\.tar\.zst$")
_PERSON = TypeAdapter(Person)


def check_person(name: str) -> str:
    """A username as the hub and the course files write it; a clear error otherwise."""
    try:
        return _PERSON.validate_python(name)
    except ValidationError as err:
        reason = err.errors()[0]["msg"].removeprefix("Value error, ")
        raise ValueError(f"{name!r} is not a person's username: {reason}") from None


@dataclasses.dataclass(frozen=True)
class Places:
    data_dir: Path
    home_root: Path | None  # None: homes are not the hub's (Slurm: the cluster's)
    exchange_root: Path
    grading_root: Path
    cohorts: Path
    rosters: Path
    logins: Path
    archives: Path
    demo_logins: Path
    database_url: str

    def home(self, name: str) -> Path | None:
        return self.home_root / check_person(name) if self.home_root else None

    def logins_file(self, name: str) -> Path:
        return self.logins / f"{check_person(name)}.jsonl"

    def exchange_folders(self, name: str) -> list[tuple[str, Path]]:
        """(path inside an export or archive, folder) of each assignment's submissions and
        feedback of ``name``, in every course the exchange holds (a course's folder may be gone)."""
        name = check_person(name)
        found = []
        for kind in ("submissions", "feedback"):
            for folder in sorted(self.exchange_root.glob(f"*/{kind}/*/{name}")):
                course, assignment = folder.parents[2].name, folder.parent.name
                if folder.is_dir() and not course.startswith("."):
                    found.append((f"exchange/{course}/{kind}/{assignment}", folder))
        return found

    def nbgrader_folders(self, name: str) -> list[tuple[str, Path]]:
        """The copies of ``name``'s submissions that grading made in each course folder."""
        name = check_person(name)
        found = []
        for kind in NBGRADER_KINDS:
            for folder in sorted(self.grading_root.glob(f"*/{kind}/{name}")):
                if folder.is_dir():
                    found.append((f"grading/{folder.parents[1].name}/{kind}", folder))
        return found

    def archives_of(self, name: str) -> list[Path]:
        name = check_person(name)
        if not self.archives.is_dir():
            return []
        return sorted(
            p for p in self.archives.iterdir() if (m := _ARCHIVE.match(p.name)) and m["name"] == name
        )


def archive_day(path: Path) -> dt.date | None:
    """The day an archive was made, from its name; None for a file retention did not write."""
    m = _ARCHIVE.match(path.name)
    return dt.date.fromisoformat(m["day"]) if m else None


def places(catalogue: Catalogue) -> Places:
    from ..appliers.storage import database_url  # the hub's own default, in one place

    data = catalogue.data_dir
    spawner = catalogue.site.spawner
    return Places(
        data_dir=data,
        home_root=data / spawner.local.home_root if spawner.kind == "local" else None,
        exchange_root=data / EXCHANGE,
        grading_root=data / "grading",  # grading/courses.py GRADING_DIR
        cohorts=data / roster.COHORTS,
        rosters=data / roster.ROSTERS,
        logins=data / LOGINS,
        archives=data / ARCHIVES,
        demo_logins=data / "secrets" / "demo-logins.txt",  # hub_config/secrets.py
        database_url=database_url(catalogue),
    )
