"""Course files: courses/<slug>/course.yaml."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal

from pydantic import BeforeValidator, Field, StringConstraints, ValidationInfo, field_validator

from .. import names
from .people import AccessWindow
from .team import Team, course_team_problems
from .types import Bytes, CourseKind, Person, Seconds, Slug, SlurmName, Strict, Title, Walltime

# --- course ----------------------------------------------------------------------------------


class Resources(Strict):
    """What one learner server of the course may use."""

    cpus: int = Field(1, ge=1, le=256, description="CPU cores.")
    memory: Bytes = Field(2 * 1024**3, gt=0, description="Memory, such as 2G (binary units, as Slurm).")
    gpus: int = Field(0, ge=0, le=16, description="GPUs.")
    walltime: Walltime = Field(
        4 * 3600,
        gt=0,
        description="Longest session, such as 4h or 04:00:00; at most the site's spawner.max_walltime "
        "for the course's kind.",
    )
    partition: SlurmName | None = Field(None, description="Slurm partition (default: the site's).")
    account: SlurmName | None = Field(None, description="Slurm account to charge.")
    qos: SlurmName | None = Field(None, description="Slurm quality of service.")
    reservation: SlurmName | None = Field(
        None, description="Slurm reservation (a class's time slot on Mesolys)."
    )


class Assignment(Strict):
    name: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$")] = Field(
        description="nbgrader assignment name: the folder under source/."
    )
    due: dt.datetime | None = Field(None, description="Deadline (ISO 8601, with time zone).")
    opens: dt.datetime | None = Field(
        None,
        description="Start of the working time (ISO 8601, with time zone), for timed work: a learner's "
        "extra time given as a percentage (docs/accommodations.md) is that share of opens to due.",
    )
    autograde_on_submit: bool = Field(
        False,
        description="Autograde each submission as it arrives and release its feedback to the learner "
        "(practice work); instructors see it in the grading interface like any other.",
    )

    @field_validator("opens")
    @classmethod
    def _opens_before_due(cls, opens: dt.datetime | None, info: ValidationInfo) -> dt.datetime | None:
        due = info.data.get("due")
        if opens is not None and (
            due is None or (opens.tzinfo is None) != (due.tzinfo is None) or opens >= due
        ):
            raise ValueError("opens needs a due after it (both with a time zone, or both without)")
        return opens


class Demo(Strict):
    # Each path segment starts with a letter, digit or _: no '..', no hidden file, no absolute path.
    notebook: Annotated[
        str, StringConstraints(pattern=r"^([A-Za-z0-9_][A-Za-z0-9_.-]*/)*[A-Za-z0-9_][A-Za-z0-9_.-]*\.ipynb$")
    ] = Field(description="Notebook path under the course's demos/ folder, such as knn.ipynb.")
    title: Title
    description: Title | None = Field(None, description="A sentence or two for the gallery's listing.")
    public: bool = Field(False, description="Open without an account.")
    members_only: bool = Field(
        False,
        description="Only the course's learners and instructors (and site admins) may open it; "
        "otherwise anyone logged in to the hub may. Not allowed with public.",
    )

    @field_validator("members_only")
    @classmethod
    def _not_public(cls, members_only: bool, info: ValidationInfo) -> bool:
        if members_only and info.data.get("public"):
            raise ValueError("a demo cannot be both public and members_only")
        return members_only


class Submission(Strict):
    """What the exchange accepts as one submission of an assignment (grading/exchange/)."""

    max_file_size: Bytes = Field(5 * 1024**2, gt=0, description="Largest file, such as 5M.")
    max_total_size: Bytes = Field(20 * 1024**2, gt=0, description="Largest submission, all files together.")
    max_files: int = Field(100, ge=1, le=10000, description="Most files in one submission.")


class Autograde(Strict):
    """Limits of one submission's autograding (`ailys grade`, grading/autograde/): each runs in a
    fresh kernel, in a copy of that submission only, without network, as the site's grading account."""

    timeout: Seconds = Field(30, gt=0, description="Longest run of one cell; a longer one is interrupted.")
    total_timeout: Seconds = Field(
        600, gt=0, description="Longest run of a whole submission; past it the kernel is killed."
    )
    memory: Bytes = Field(1024**3, gt=0, description="Memory one submission may allocate, such as 1G.")
    processes: int = Field(64, ge=8, le=4096, description="Processes and threads one submission may run.")
    file_size: Bytes = Field(
        64 * 1024**2, gt=0, description="Largest file one submission may write, such as 64M (RLIMIT_FSIZE)."
    )
    max_output: Bytes = Field(
        8 * 1024**2, gt=0, description="Output kept from one notebook; the rest is dropped."
    )
    preload: list[Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_.]*$")]] = Field(
        ["numpy", "scipy", "pandas", "sklearn", "matplotlib", "matplotlib.pyplot"],
        description="Modules imported once by the template each kernel is forked from (missing ones "
        "are skipped): submissions then start in a fraction of a second.",
    )


class LatePolicy(Strict):
    """What a submission after an assignment's `due` gets in `ailys grades export`."""

    action: Literal["accept", "flag", "zero"] = Field(
        "flag",
        description="accept: graded as any other, not marked; flag: graded and marked late; "
        "zero: marked late and exported with 0 for that assignment.",
    )
    grace: Seconds = Field(0, description="Time after the deadline still counted on time, such as 15m.")


class Grades(Strict):
    """The course's gradebook and grade export (grading/courses.py, grading/export.py)."""

    database_url: str | None = Field(
        None,
        pattern=r"^(sqlite:///|postgresql(\+\w+)?://)",
        description="SQLAlchemy URL of this course's nbgrader gradebook. Default: the site's "
        "formgraders.database_url, else SQLite in the course's grading folder.",
    )
    late: LatePolicy = Field(default_factory=LatePolicy, description="How late submissions are exported.")
    keep_after_forget: bool | None = Field(
        None,
        description="Keep a learner's grades in this gradebook when `ailys person forget` erases the "
        "rest of their data. Institutions keep the grades that count towards a degree (the record of "
        "a diploma is kept long after the course, and the right to erasure does not cover what the "
        "law requires to keep); a short course's grades only serve the course. Default: kept for "
        "academic courses, removed for short courses and project teams.",
    )
    emails: dict[Person, str] = Field(
        default_factory=dict,
        description="Learner to email address, for the Moodle CSV export (its 'Email address' column; "
        "empty for learners not listed).",
    )

    @field_validator("emails")
    @classmethod
    def _emails(cls, emails: dict[str, str]) -> dict[str, str]:
        bad = sorted(
            k for k, v in emails.items() if not re.fullmatch(r"[^@\s,\"]+@[^@\s,\"]+\.[^@\s,\"]+", v)
        )
        if bad:
            raise ValueError(f"not an email address for {', '.join(bad)}")
        return emails


def _day_or_moment(value):
    """YYYY-MM-DD is a day; YYYY-MM-DDTHH:MM[:SS][+zone] a moment (YAML gives either as a date,
    a datetime or a string)."""
    if isinstance(value, dt.date):
        return value
    text = str(value).strip()
    try:
        return dt.date.fromisoformat(text) if len(text) == 10 else dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is neither a date (YYYY-MM-DD) nor a moment (YYYY-MM-DDTHH:MM, with an optional zone)"
        ) from None


# A course's first or last day, or a moment where a day is too coarse (a one-afternoon session).
DayOrMoment = Annotated[dt.date | dt.datetime, BeforeValidator(_day_or_moment)]


def _naive(moment: dt.date | dt.datetime, last_day: bool = False) -> dt.datetime:
    """A day or a moment as a naive datetime, for ordering only (roster.py reads them in the site's
    time zone): a day starts at 00:00, or ends at the next day's 00:00."""
    if isinstance(moment, dt.datetime):
        return moment if moment.tzinfo is None else moment.astimezone(dt.UTC).replace(tzinfo=None)
    return dt.datetime.combine(moment + dt.timedelta(days=1 if last_day else 0), dt.time())


class LearnerSources(Strict):
    """Learners a course takes from elsewhere than its own list; the roster is the union."""

    ldap_group: str | None = Field(
        None,
        description="DN of a directory group whose members are learners, such as "
        "cn=m2-ia,ou=groups,dc=mesolys,dc=fr; read by the course sync (authentication.kind ldap).",
    )
    oidc_group: str | None = Field(
        None,
        description="A value of the provider's groups claim whose holders are learners, recorded at "
        "their login (authentication.kind oidc).",
    )


class Course(Strict):
    """A course: courses/<slug>/course.yaml."""

    slug: Slug = Field(description="The course's identifier; must equal its folder's name.")
    title: Title
    kind: CourseKind = Field(
        description="academic: a master's or PhD course; short-course: continuing education for "
        "industrial trainees; project-team: a greenhouse team of 4 to 6 learners."
    )
    instructors: list[Person] = Field(
        min_length=1,
        description="Staff who teach and grade. System account names are refused (site: spawner.min_uid).",
    )
    learners: list[Person] = Field(
        default_factory=list,
        description="Enrolled learners. System account names are refused (site: spawner.min_uid).",
    )
    learners_from: LearnerSources = Field(
        default_factory=lambda: LearnerSources(),
        description="Other sources of learners, added to those listed (hub_config/roster.py).",
    )
    start: DayOrMoment = Field(
        description="First day (YYYY-MM-DD), or a moment (YYYY-MM-DDTHH:MM, the site's time zone unless "
        "it says its own)."
    )
    end: DayOrMoment = Field(
        description="Last day (YYYY-MM-DD, the whole day), or a moment; not before start."
    )
    access: AccessWindow | None = Field(
        None,
        description="short-course: when its trainees may log in (default: the site's "
        "authentication.trainee_access).",
    )
    resources: Resources = Field(default_factory=Resources)
    environment: Slug = Field("python-ml", description="Course environment (built by images/).")
    assignments: list[Assignment] = Field(default_factory=list, description="nbgrader assignments.")
    demos: list[Demo] = Field(default_factory=list, description="Voilà demos.")
    submission: Submission = Field(
        default_factory=Submission,
        description="Limits of a submission to the exchange: a file or a total over them is refused "
        "with a message naming it, and earlier submissions are kept.",
    )
    autograde: Autograde = Field(default_factory=Autograde, description="Limits of autograding.")
    grades: Grades = Field(default_factory=Grades, description="Gradebook, late policy and emails.")
    mentors: list[Person] = Field(
        default_factory=list,
        description="People who mentor the course's teams without teaching it (data professionals, "
        "chair holders): they log in and reach their teams' folders, servers and mentor page only.",
    )
    teams: list[Team] = Field(
        default_factory=list,
        description="Project teams of the course's learners, each with a shared folder and server "
        "(docs/teams.md).",
    )

    @field_validator("instructors", "learners", "mentors", "assignments", "demos")
    @classmethod
    def _no_doubles(cls, items: list, info: ValidationInfo) -> list:
        ids = [getattr(i, "name", None) or getattr(i, "notebook", i) for i in items]
        doubles = sorted({i for i in ids if ids.count(i) > 1})
        if doubles:
            raise ValueError(f"{', '.join(doubles)} listed more than once")
        # (this field, the earlier one it may not share a person with, the words for both)
        other = {
            "learners": ("instructors", "instructor and learner"),
            "mentors": ("learners", "mentor and learner"),
        }
        if info.field_name in other:
            field, words = other[info.field_name]
            both = sorted(set(items) & set(info.data.get(field, [])))
            if both:
                raise ValueError(f"{', '.join(both)} cannot be both {words} of one course")
        return items

    @field_validator("teams")
    @classmethod
    def _teams_agree(cls, teams: list[Team], info: ValidationInfo) -> list[Team]:
        reasons = course_team_problems(teams, info.data.get("instructors", []), info.data.get("mentors", []))
        if reasons:
            raise ValueError("; ".join(reasons))
        return teams

    @field_validator("end")
    @classmethod
    def _not_before_start(cls, end: dt.date, info: ValidationInfo) -> dt.date:
        start = info.data.get("start")
        if start and _naive(end, last_day=True) < _naive(start):
            raise ValueError(f"the course ends ({end}) before it starts ({start})")
        return end

    @property
    def learner_group(self) -> str:
        return names.course_group(self.slug)

    @property
    def staff_group(self) -> str:
        return names.staff_group(self.slug)
