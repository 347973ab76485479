"""Hub services of ours: course-sync keeps groups and memberships equal to courses/;
ailys-cli is the token `ailys up` and `ailys down` use to stop the hub and its servers."""

import sys

from traitlets.config import Config

from ..catalogue import Catalogue
from ..names import CLI_SERVICE, SYNC_SERVICE
from ..secrets import Secrets
from ._lists import append

# What `ailys courses sync` needs and nothing more: create users and course groups,
# change memberships, delete the groups of a removed course.
SYNC_SCOPES = ["admin:groups", "admin:users", "list:users", "read:users:name"]


def apply_services(c: Config, catalogue: Catalogue, secrets: Secrets) -> None:
    every = catalogue.site.courses_sync_every
    append(
        c.JupyterHub,
        "services",
        {
            "name": SYNC_SERVICE,
            "api_token": secrets.sync_token,
            "command": [
                sys.executable,
                "-m",
                "hub_config.sync",
                str(catalogue.site_file),
                f"--every={every}",
            ],
        },
    )
    append(
        c.JupyterHub,
        "load_roles",
        {
            "name": SYNC_SERVICE,
            "description": "Keep course groups and memberships equal to the course folders",
            "scopes": SYNC_SCOPES,
            "services": [SYNC_SERVICE],
        },
    )
    append(c.JupyterHub, "services", {"name": CLI_SERVICE, "api_token": secrets.cli_token})
    append(
        c.JupyterHub,
        "load_roles",
        {
            "name": CLI_SERVICE,
            "description": "Shut the hub down",
            "scopes": ["shutdown"],
            "services": [CLI_SERVICE],
        },
    )
