"""The mentor page (hub_config/mentors.py) as a hub-managed service, on sites whose courses have
teams. Every user may log in to it (access:services!service=mentors, added to the default 'user'
role, as the footprint's): a mentor added to a team on disk reaches it without a restart, and the
service itself answers 403 to anyone who mentors no team."""

import sys

from traitlets.config import Config

from .. import names
from ..catalogue import Catalogue
from ..mentors import MENTOR_SCOPES, SERVICE
from ._lists import append

ACCESS_SCOPE = names.access_scope(SERVICE)


def apply_mentors(c: Config, catalogue: Catalogue) -> None:
    if not any(course.teams for course in catalogue.courses):
        return
    append(
        c.JupyterHub,
        "services",
        {
            "name": SERVICE,
            "url": f"http://127.0.0.1:{catalogue.site.teams.mentors_port}",
            "command": [sys.executable, "-m", "hub_config.mentors", str(catalogue.site_file)],
            "display": True,
            "info": {"description": "Mentored teams / Équipes suivies"},
            "oauth_no_confirm": True,  # our own service: no "authorize access" page
        },
    )
    append(
        c.JupyterHub,
        "load_roles",
        {
            "name": SERVICE,
            "description": "Read the activity and servers of the teams' members, for their mentors",
            "scopes": MENTOR_SCOPES,
            "services": [SERVICE],
        },
    )
    c.JupyterHub.extra_user_scopes = {*c.JupyterHub.get("extra_user_scopes", set()), ACCESS_SCOPE}
