"""The project teams of a catalogue, as the sync, the spawners, the team servers and the mentor
page see them: one TeamView per team of every course, with its names and its folder.

Pure: computed from a validated catalogue, no I/O. The names are names.py's (team_name,
mentor_group); the folder is ``<site teams.dir>/<team_name>`` (docs/teams.md).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from . import names
from .catalogue import Catalogue
from .schema import Course, Title

LINK_PREFIX = "team-"  # a member's and mentor's home holds team-<team>/ (spawners/teams.py)


@dataclasses.dataclass(frozen=True)
class TeamView:
    slug: str  # the course
    team: str  # the team's name in the course file
    name: str  # team-<slug>-<team>: hub group, Unix group, team account
    members: tuple[str, ...]  # learners of the course, in the file's order
    mentors: tuple[str, ...]
    folder: Path  # <teams.dir>/<name>
    course: Course = dataclasses.field(compare=False, repr=False)
    title: Title | None = dataclasses.field(default=None, compare=False, repr=False)  # the project

    @property
    def mentor_group(self) -> str:
        return names.mentor_group(self.slug, self.team)

    @property
    def server_role(self) -> str:
        return names.team_server_role(self.slug, self.team)

    @property
    def link(self) -> str:
        """The folder's name in a member's or mentor's home."""
        return f"{LINK_PREFIX}{self.team}"

    @property
    def people(self) -> tuple[str, ...]:
        """Members, then mentors: everyone who reaches the folder and the server."""
        return (*self.members, *self.mentors)


def teams_dir(catalogue: Catalogue) -> Path:
    """The site's folder of team folders (teams.dir, relative to the site file; default
    <data_dir>/teams)."""
    configured = catalogue.site.teams.dir
    if configured is None:
        return catalogue.data_dir / "teams"
    return (catalogue.site_file.parent / configured).resolve()


def teams_of(catalogue: Catalogue) -> list[TeamView]:
    """Every team of every course, in course then file order. Members are those still learners of
    the course now (a learner gone from a directory group leaves the team at once)."""
    root = teams_dir(catalogue)
    views = []
    for course in catalogue.courses:
        learners = set(catalogue.learners(course))
        for team in course.teams:
            name = names.team_name(course.slug, team.name)
            views.append(
                TeamView(
                    slug=course.slug,
                    team=team.name,
                    name=name,
                    members=tuple(m for m in team.members if m in learners),
                    mentors=tuple(team.mentors),
                    folder=root / name,
                    course=course,
                    title=team.title,
                )
            )
    return views


def team_of_account(catalogue: Catalogue, username: str) -> TeamView | None:
    """The team whose account (or group) is ``username``, or None for a person."""
    return next((t for t in teams_of(catalogue) if t.name == username), None)


def teams_of_person(catalogue: Catalogue, username: str) -> list[TeamView]:
    """The teams ``username`` is a member or a mentor of (their home's team-<team>/ links)."""
    return [t for t in teams_of(catalogue) if username in t.people]


def mentored_by(catalogue: Catalogue, username: str) -> list[TeamView]:
    """The teams ``username`` mentors (the mentor page)."""
    return [t for t in teams_of(catalogue) if username in t.mentors]


def home_links(catalogue: Catalogue, username: str) -> dict[str, TeamView]:
    """The team folders in ``username``'s home: ``team-<team>`` each, or ``team-<course>-<team>``
    (the team's account name) for a team name the person meets in two courses."""
    teams = teams_of_person(catalogue, username)
    plain = [t.link for t in teams]
    return {(t.link if plain.count(t.link) == 1 else t.name): t for t in teams}


def team_groups(catalogue: Catalogue) -> dict[str, dict]:
    """Each team's two hub groups (load_groups' shape): the team's members, named as the team
    account, and its mentors. The course sync keeps them equal to the files."""
    groups = {}
    for t in teams_of(catalogue):
        properties = {"course": t.slug, "team": t.team}
        groups[t.name] = {"users": list(t.members), "properties": {**properties, "kind": "team"}}
        groups[t.mentor_group] = {"users": list(t.mentors), "properties": {**properties, "kind": "mentors"}}
    return groups


def is_team_group(name: str) -> bool:
    """A team or mentor group of ours (their names are reserved: no person or course takes them)."""
    return name.startswith((names.TEAM, names.MENTORS)) and not name.startswith(names.TEAM_SERVER)
