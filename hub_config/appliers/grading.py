"""One grading service per course with assignments: nbgrader's formgrader for that course's
instructors only (grading/service.py).

Service `grading-<slug>` runs as the hub's account on 127.0.0.1 (the proxy reaches it at
<base_url>services/grading-<slug>/). Its OAuth lets in only users holding
access:services!service=grading-<slug> (``staff_scopes``), which the course's instructors hold
in their role instructor-<slug>; nobody else (learners, other courses' instructors) gets past it: 403. Its own
token may reach the exchange, which treats the service `grading-<slug>` as staff of <slug>
and of no other course.
"""

import sys

from traitlets.config import Config

from .. import names
from ..catalogue import Catalogue
from ..schema import Course
from ._lists import append
from .exchange import ACCESS as EXCHANGE_ACCESS
from .exchange import exchange_service_url


def staff_scopes(course: Course) -> list[str]:
    """What the course's instructors hold for grading, added to their role instructor-<slug>
    (access.py): roles are granted by the authenticator (manage_roles), not by load_roles."""
    return [names.access_scope(names.grading_service(course.slug))] if course.assignments else []


def graded_courses(catalogue: Catalogue) -> list[Course]:
    """Courses with assignments, sorted by slug: the order of their ports."""
    return sorted((c for c in catalogue.courses if c.assignments), key=lambda c: c.slug)


def service_ports(catalogue: Catalogue) -> dict[str, int]:
    first = catalogue.site.formgraders.port
    return {c.slug: first + i for i, c in enumerate(graded_courses(catalogue))}


def grading_service(catalogue: Catalogue, course: Course, port: int) -> dict:
    return {
        "name": names.grading_service(course.slug),
        "url": f"http://127.0.0.1:{port}",
        "display": True,  # in the hub's Services menu of those who may open it, and theirs only
        "oauth_no_confirm": True,
        "command": [sys.executable, "-m", "grading.service", str(catalogue.site_file), course.slug],
        "environment": {"AILYS_EXCHANGE_URL": exchange_service_url(catalogue)},
    }


def apply_grading(c: Config, catalogue: Catalogue) -> None:
    ports = service_ports(catalogue)
    for course in graded_courses(catalogue):
        name = names.grading_service(course.slug)
        append(c.JupyterHub, "services", grading_service(catalogue, course, ports[course.slug]))
        append(
            c.JupyterHub,
            "load_roles",
            {
                "name": name,
                "description": f"The grading service of {course.slug}: release, collect, return feedback",
                "scopes": [EXCHANGE_ACCESS],
                "services": [name],
            },
        )
