"""Project teams: a course file's ``teams:`` (Team) and the site file's ``teams:`` section (Teams).

A team is a few learners of one course with their mentors, a shared folder and a shared server
(docs/teams.md). Its hub group, Unix group and team account share one name (names.team_name),
at most 32 characters. What one team says is checked here; what needs the whole course (a learner
in two teams, an unknown mentor) on Course; what needs the roster or the site (a member who is no
learner, a size outside the site's bounds) by ``team_problems``, which the catalogue calls.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Annotated

from pydantic import Field, StringConstraints, field_validator, model_validator

from .types import Person, Port, SlurmName, Strict, Title, Username, argv_templates

# Absolute bounds on a team's size; a site narrows them (Teams.min_members, max_members).
SMALLEST, LARGEST = 2, 8

TeamName = Annotated[
    str,
    StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,14}[a-z0-9]$"),
    Field(description="Lowercase letters, digits and dashes, 2 to 16 characters, starting with a letter."),
]


def _doubles(items: Iterable[str]) -> list[str]:
    items = list(items)
    return sorted({i for i in items if items.count(i) > 1})


class Team(Strict):
    """One team of a course: its members work in one folder and one shared server."""

    name: TeamName = Field(
        description="Unique in the course. The team's hub group, Unix group and account are "
        "team-<course>-<name> (a hashed tail past 32 characters); its folder in members' homes is "
        "team-<name>/."
    )
    title: Title | None = Field(None, description="The team's project, shown on the mentor page.")
    members: list[Person] = Field(
        min_length=SMALLEST,
        max_length=LARGEST,
        description="Learners of the course (from any of its sources), each in at most one team of "
        "the course; between the site's teams.min_members and teams.max_members.",
    )
    mentors: list[Person] = Field(
        min_length=1,
        description="Who follows the team: instructors of the course or people its `mentors` list. "
        "They reach the team's folder and server and see the team on the mentor page.",
    )

    @field_validator("members", "mentors")
    @classmethod
    def _no_doubles(cls, people: list[str]) -> list[str]:
        if doubles := _doubles(people):
            raise ValueError(f"{', '.join(doubles)} listed more than once")
        return people


def course_team_problems(teams: list[Team], instructors: Iterable[str], mentors: Iterable[str]) -> list[str]:
    """What a course's teams say wrongly together: the reasons, each naming the team."""
    reasons = []
    if doubles := _doubles(t.name for t in teams):
        reasons.append(f"team name {', '.join(doubles)} used more than once")
    seen: dict[str, str] = {}
    for team in teams:
        for member in team.members:
            if member in seen:
                reasons.append(f"{member} is a member of both {seen[member]} and {team.name}")
            seen.setdefault(member, team.name)
    known = set(instructors) | set(mentors)
    for team in teams:
        unknown = [m for m in team.mentors if m not in known]
        if unknown:
            reasons.append(
                f"mentor {', '.join(unknown)} of team {team.name} is neither an instructor of the "
                "course nor in its mentors list"
            )
    return reasons


def team_problems(
    teams: list[Team], learners: Iterable[str] | None, settings: Teams, site_file: str
) -> list[tuple[str, str]]:
    """(key, reason) for what needs the roster and the site: a member who is not a learner of the
    course (unless ``learners`` is None: the roster is not known), a team smaller or larger than
    the site allows."""
    known = None if learners is None else set(learners)
    problems = []
    for i, team in enumerate(teams):
        size = len(team.members)
        if not settings.min_members <= size <= settings.max_members:
            problems.append(
                (
                    f"teams[{i}].members",
                    f"team {team.name} has {size} members; the site allows {settings.min_members} "
                    f"to {settings.max_members} (teams.min_members, teams.max_members in {site_file})",
                )
            )
        strangers = [m for m in team.members if known is not None and m not in known]
        if strangers:
            problems.append(
                (
                    f"teams[{i}].members",
                    f"{', '.join(strangers)} {'is' if len(strangers) == 1 else 'are'} not a learner "
                    "of the course (learners, learners_from, cohort)",
                )
            )
    return problems


class Teams(Strict):
    """Project teams of the site's courses: their folders, their size, the mentor page."""

    dir: Path | None = Field(
        None,
        description="Folder of the team folders (<dir>/<team account>, mode 2770), relative to this "
        "file unless absolute. On a Slurm site a shared file system path, the same on every node. "
        "Default: <data_dir>/teams.",
    )
    min_members: int = Field(4, ge=SMALLEST, le=LARGEST, description="Fewest members of a team.")
    max_members: int = Field(6, ge=SMALLEST, le=LARGEST, description="Most members of a team.")
    mentors_port: Port = Field(
        8095, description="Port of the mentor page's hub service on 127.0.0.1 (the proxy reaches it)."
    )

    @model_validator(mode="after")
    def _ordered(self) -> Teams:
        if self.min_members > self.max_members:
            raise ValueError(
                f"min_members ({self.min_members}) is more than max_members ({self.max_members})"
            )
        return self


# What the argv templates of TeamAccounts may name; each value is checked before it is formatted in.
TEAM_TEMPLATE_FIELDS = ("username", "uid", "learners", "home", "shell", "comment", "course", "members")
TeamCommands = argv_templates(TEAM_TEMPLATE_FIELDS)


class TeamAccounts(Strict):
    """On the Slurm site, each team's Unix group, team account, Slurm association and team folder,
    made and refreshed by `ailys-provision-trainee team NAME`, which the hub (not root) runs through
    its sudo rule at each course sync and before a team server's start (docs/teams.md, "On the
    Slurm site")."""

    command: str = Field(
        "sudo -n /usr/local/sbin/ailys-provision-trainee --site {site}",
        description="How the hub runs the provisioning command, with {site} (this file's absolute path, "
        "which the sudoers rule fixes); the hub adds `team NAME`.",
    )
    uid_min: int = Field(
        80000,
        ge=1000,
        description="First uid (and gid) of the team accounts' range, theirs alone: an account in it "
        "named team-* counts as a team's.",
    )
    uid_max: int = Field(80999, le=2**31 - 2, description="Last uid of the team accounts' range.")
    learners: Username = Field(
        description="The learners' group of the hub's Slurm sudo rule (mesolys-learners), which must "
        "exist: each team account is a supplementary member, so the hub may submit its server's job "
        "as it. Its primary group is the team's own."
    )
    slurm_accounts: list[SlurmName] = Field(
        min_length=1,
        description="Slurm accounts a team account may be associated with. The first is for courses "
        "whose resources name no account; a course naming another is refused.",
    )
    home_root: Path = Field(
        Path("/home"),
        description="Folder (absolute, existing) of the team accounts' homes, <home_root>/<name>, mode "
        "0700: their job logs, apart from the team folder.",
    )
    shell: str = Field(
        "/usr/sbin/nologin",
        pattern=r"^/\S+$",
        description="Login shell: nologin, nobody logs in as a team (its server's terminals still "
        "open a shell).",
    )
    create: TeamCommands = Field(
        default_factory=lambda: [
            [
                "useradd",
                "--uid",
                "{uid}",
                "--user-group",
                "--groups",
                "{learners}",
                "--home-dir",
                "{home}",
                "--create-home",
                "--key",
                "HOME_MODE=0700",
                "--shell",
                "{shell}",
                "--comment",
                "{comment}",
                "{username}",
            ],
        ],
        description="Commands (argv lists, run as root in order, no shell) that create a team account "
        "whose primary group is a group of the same name, with {username}, {uid}, {learners}, {home}, "
        "{shell}, {comment} and {course}. The default makes it on this host, right where the nodes "
        "read this host's accounts (the test cluster); elsewhere, the site's own account tool.",
    )
    members: TeamCommands = Field(
        default_factory=lambda: [["gpasswd", "--members", "{members}", "{username}"]],
        description="Commands that set the team group's supplementary members to exactly {members} "
        "(comma-separated: the team's members and mentors that have an account), same fields.",
    )

    @model_validator(mode="after")
    def _a_range(self) -> TeamAccounts:
        if self.uid_max < self.uid_min:
            raise ValueError(f"uid_max ({self.uid_max}) is below uid_min ({self.uid_min})")
        if not self.home_root.is_absolute():
            raise ValueError(f"home_root must be an absolute path, not {self.home_root}")
        if "{site}" not in self.command:
            raise ValueError("command must contain {site}, the site file the sudoers rule fixes")
        return self
