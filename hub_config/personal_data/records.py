"""The small records that name a person in the site's data: their entry in a cohort
(<data_dir>/cohorts/<slug>.json), the directory or provider groups recorded for them
(<data_dir>/rosters/<source>.json), a demo password (<data_dir>/secrets/demo-logins.txt), and
the places of the site and course files (in git) that name them.

A cohort file may hold more than its ``trainees`` (invitations, for instance): any list entry
whose ``username`` is the person, and any mapping keyed by their name, is theirs.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from .. import roster
from ..catalogue import Catalogue
from ..secrets import read_demo_logins
from .places import Places, check_person


def _theirs(entry, name: str) -> bool:
    return isinstance(entry, dict) and entry.get("username") == name


def _read(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as err:
        raise ValueError(f"{path}: not the JSON the hub writes ({err})") from None


def cohort_records(places: Places, name: str) -> dict[str, dict]:
    """Course slug to what its cohort file holds on ``name`` ({key: [entries] or entry})."""
    name = check_person(name)
    found = {}
    for path in sorted(places.cohorts.glob("*.json")) if places.cohorts.is_dir() else ():
        data, held = _read(path), {}
        for key, value in data.items() if isinstance(data, dict) else ():
            if isinstance(value, list) and (mine := [e for e in value if _theirs(e, name)]):
                held[key] = mine
            elif isinstance(value, dict) and name in value:
                held[key] = value[name]
        if held:
            found[path.stem] = held
    return found


def remove_from_cohorts(places: Places, name: str) -> list[str]:
    """Drop ``name``'s entries from every cohort file; the slugs whose file changed."""
    changed = []
    for slug in cohort_records(places, name):
        path = places.cohorts / f"{slug}.json"
        data = _read(path)
        for key, value in list(data.items()):
            if isinstance(value, list):
                data[key] = [e for e in value if not _theirs(e, name)]
            elif isinstance(value, dict):
                value.pop(name, None)
        roster.write_json(path, data)
        changed.append(slug)
    return changed


def roster_groups(places: Places, name: str) -> dict[str, list[str]]:
    """Source (ldap, oidc) to the groups recorded with ``name`` as a member."""
    name = check_person(name)
    found = {}
    for source in roster.SOURCES:
        path = places.rosters / f"{source}.json"
        groups = _read(path) if path.is_file() else {}
        mine = sorted(g for g, users in groups.items() if name in users)
        if mine:
            found[source] = mine
    return found


def remove_from_rosters(places: Places, name: str) -> dict[str, list[str]]:
    held = roster_groups(places, name)
    for source in held:
        groups = _read(places.rosters / f"{source}.json")
        roster.write_groups(
            places.data_dir, source, {g: [u for u in us if u != name] for g, us in groups.items()}
        )
    return held


def remove_demo_login(places: Places, name: str) -> bool:
    """The demo password of ``name`` (LocalLogin makes an account from each line at every login)."""
    if not places.demo_logins.is_file():
        return False
    logins = read_demo_logins(places.demo_logins)
    if logins.pop(check_person(name), None) is None:
        return False
    tmp = places.demo_logins.with_name(f".{places.demo_logins.name}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.writelines(f"{n} {p}\n" for n, p in logins.items())
    os.replace(tmp, places.demo_logins)
    return True


def named_in(catalogue: Catalogue, name: str) -> list[str]:
    """Where the site file and the course files (kept in git) name ``name``: not erasable by a
    command, since the history of the repository keeps them; said in the export and by forget."""
    found = []
    if name in catalogue.site.authentication.admin_users:
        found.append(f"{catalogue.site_file}: authentication.admin_users")
    for course in catalogue.courses:
        where = catalogue.courses_dir / course.slug / "course.yaml"
        keys = [k for k in ("instructors", "learners") if name in getattr(course, k)]
        keys += ["grades.emails"] if name in course.grades.emails else []
        if keys:
            found.append(f"{where}: {', '.join(keys)}")
    return found


def accommodation_records(places: Places, name: str) -> dict[str, dict]:
    """Course slug to ``name``'s extra time and extensions there (grading/accommodations.py),
    in every course folder, a departed course's too."""
    from grading import accommodations

    name = check_person(name)
    found = {}
    for path in sorted(places.grading_root.glob(f"*/{accommodations.FILE}")):
        data = accommodations.read(path.parent)
        if name in data["learners"]:
            found[path.parent.name] = {
                **data["learners"][name],
                "extension_seconds": data["extensions"].get(name, {}),
            }
    return found


def remove_accommodations(places: Places, name: str) -> list[str]:
    """Erase ``name``'s accommodations in every course folder; the slugs whose file changed."""
    from grading import accommodations

    name = check_person(name)
    return [
        path.parent.name
        for path in sorted(places.grading_root.glob(f"*/{accommodations.FILE}"))
        if accommodations.forget(path.parent, name)
    ]
