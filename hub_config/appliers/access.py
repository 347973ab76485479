"""Groups and roles of each course.

course-<slug> holds the learners and staff-<slug> the instructors. The role
instructor-<slug> lets that course's instructors see and open the servers of that
course's learners, and nobody else's. Roles are granted by the authenticator at login
and refresh (Authenticator.manage_roles), so adding a course needs no restart.
"""

from traitlets.config import Config

from .. import names
from ..catalogue import Catalogue
from ..schema import Course
from ..teams import team_groups
from .grading import staff_scopes
from .teams import team_roles_of


def course_groups(course: Course, learners: tuple[str, ...]) -> dict[str, dict]:
    """The course's two groups; ``learners`` from every source (Catalogue.learners)."""
    return {
        course.learner_group: {
            "users": list(learners),
            "properties": {"course": course.slug, "kind": "learners"},
        },
        course.staff_group: {
            "users": list(course.instructors),
            "properties": {"course": course.slug, "kind": "staff"},
        },
    }


def instructor_role(course: Course, learners: tuple[str, ...]) -> dict:
    group = f"group={course.learner_group}"
    return {
        "name": names.instructor_role(course.slug),
        "description": f"Instructors of {course.slug}: see and open its learners' servers",
        "scopes": [
            "admin-ui",
            f"list:users!{group}",
            f"read:users!{group}",
            f"read:servers!{group}",
            f"access:servers!{group}",
            # The same per learner: a learner's server checks a token's scopes itself and cannot
            # resolve a group filter (jupyterhub.services.auth.check_scopes), so without these an
            # instructor's API token got 403 there. The hub's own checks use the group filter.
            *(f"access:servers!user={name}" for name in learners),
            *staff_scopes(course),  # the course's grading service (formgrader), if it has assignments
        ],
    }


def roles_of(username: str, catalogue: Catalogue) -> list[dict]:
    """The course and team roles ``username`` holds, as Authenticator.manage_roles expects them."""
    courses = [
        instructor_role(c, catalogue.learners(c)) for c in catalogue.courses if username in c.instructors
    ]
    return courses + team_roles_of(username, catalogue)


def apply_groups_and_roles(c: Config, catalogue: Catalogue) -> None:
    groups = {}
    for course in catalogue.courses:
        groups.update(course_groups(course, catalogue.learners(course)))
    groups.update(team_groups(catalogue))  # each team's members and mentors (hub_config/teams.py)
    c.JupyterHub.load_groups = groups
