"""The footprint service (footprint/service.py) as a hub-managed service: energy and CO2 pages
for learners and instructors, the JupyterLab status bar's running figure, the sampling of local
and container sessions, and on the Slurm site `ailys energy collect` every energy.service.collect_every.

Every user may log in to it (access:services!service=footprint, added to the default 'user' role);
which figures they see is the service's decision (their own; a course's for its staff group).
"""

import sys

from traitlets.config import Config

from .. import names
from ..catalogue import Catalogue
from ._lists import append

SERVICE = names.FOOTPRINT_SERVICE
ACCESS_SCOPE = names.access_scope(SERVICE)
# The narrowest that tell it who runs which server since when, and in which course.
FOOTPRINT_SCOPES = ["list:users", "read:servers", "read:users:groups"]


def apply_footprint(c: Config, catalogue: Catalogue) -> None:
    service = catalogue.site.energy.service
    if not service.enabled:
        return
    append(
        c.JupyterHub,
        "services",
        {
            "name": SERVICE,
            "url": f"http://127.0.0.1:{service.port}",
            "command": [sys.executable, "-m", "footprint", str(catalogue.site_file)],
            "display": True,
            "info": {"description": "Energy and CO2 / Énergie et CO2"},
            # Our own service: no "authorize access" page (the status bar's fetch follows the redirects).
            "oauth_no_confirm": True,
        },
    )
    append(
        c.JupyterHub,
        "load_roles",
        {
            "name": SERVICE,
            "description": "Read who runs which server, to measure sessions",
            "scopes": FOOTPRINT_SCOPES,
            "services": [SERVICE],
        },
    )
    c.JupyterHub.extra_user_scopes = {*c.JupyterHub.get("extra_user_scopes", set()), ACCESS_SCOPE}
