"""The names the hub, its services and the course files agree on: each course's groups, role and
grading service, the exchange's service name, and where the proxy serves a hub service.

Standard library only and no import of ours, so that spawners/, gallery/ and grading/ may use it
(DESIGN.md's folder table) without pulling in the rest of hub_config.
"""

from __future__ import annotations

import hashlib

LEARNERS = "course-"  # group of a course's learners
STAFF = "staff-"  # group of its instructors
INSTRUCTOR = "instructor-"  # role of its instructors (hub_config/appliers/access.py)
GRADING = "grading-"  # hub service of its formgrader (grading/service.py), staff of that course only
EXCHANGE_SERVICE = "exchange"  # the assignment exchange (grading/exchange/service.py)
GALLERY_SERVICE = "gallery"  # the Voilà demo gallery (gallery/)
FOOTPRINT_SERVICE = "footprint"  # energy and CO2 pages, sampling, collection (footprint/service.py)
SYNC_SERVICE = "course-sync"  # keeps hub groups equal to courses/ (hub_config/sync.py)
CLI_SERVICE = "ailys-cli"  # the token `ailys up` and `ailys down` use (hub_config/appliers/services.py)
CULLER_SERVICE = "idle-culler"  # jupyterhub-idle-culler (hub_config/appliers/culler.py)
PROMETHEUS_SERVICE = "prometheus"  # Prometheus's token: reads metrics only (hub_config/appliers/metrics.py)
TEAM = "team-"  # a project team: its hub group, its Unix group and its team account (one name)
MENTORS = "mentors-"  # hub group of a team's mentors
TEAM_SERVER = "team-server-"  # role that reaches a team's shared server (members and mentors)
UNIX_NAME_MAX = 32  # useradd and groupadd refuse longer names


def course_group(slug: str) -> str:
    return f"{LEARNERS}{slug}"


def staff_group(slug: str) -> str:
    return f"{STAFF}{slug}"


def course_of_group(name: str) -> str | None:
    """The slug of a course's learner or staff group; None for any other group."""
    for prefix in (LEARNERS, STAFF):
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix) :]
    return None


def instructor_role(slug: str) -> str:
    return f"{INSTRUCTOR}{slug}"


def grading_service(slug: str) -> str:
    return f"{GRADING}{slug}"


def access_scope(service: str) -> str:
    """The scope that lets a token through a hub service's own HubAuth check."""
    return f"access:services!service={service}"


def service_prefix(service: str, base_url: str = "/") -> str:
    """Where the proxy serves a hub service: ``<base_url>services/<name>/``."""
    return f"{base_url}services/{service}/"


def team_name(slug: str, team: str) -> str:
    """``team-<course>-<team>``: the team's hub group, its Unix group and the Unix and hub account
    that owns its shared server. Unix names stop at 32 characters, so a longer one keeps its start
    and ends with a hash of the whole: stable, distinct, and still readable in ``ls -l``."""
    name = f"{TEAM}{slug}-{team}"
    if len(name) <= UNIX_NAME_MAX:
        return name
    digest = hashlib.sha1(f"{slug}/{team}".encode()).hexdigest()[:8]
    return f"{name[: UNIX_NAME_MAX - 9].rstrip('-')}-{digest}"


def mentor_group(slug: str, team: str) -> str:
    return f"{MENTORS}{team_name(slug, team)[len(TEAM) :]}"


def team_server_role(slug: str, team: str) -> str:
    return f"{TEAM_SERVER}{team_name(slug, team)[len(TEAM) :]}"
