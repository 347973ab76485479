"""Hub services of ours: course-sync keeps groups and memberships equal to courses/ and locks
out trainees whose access window closed;
ailys-cli is the token `ailys up` and `ailys down` use to stop the hub and its servers."""

import sys

from traitlets.config import Config

from ..catalogue import Catalogue
from ..names import CLI_SERVICE, SYNC_SERVICE
from ..secrets import Secrets
from ._lists import append

# What `ailys courses sync` needs and nothing more (hub_config/sync.py):
SYNC_SCOPES = [
    "admin:groups",  # create course groups, change memberships, delete a removed course's groups
    "admin:users",  # create the users of a new course (POST /users)
    "list:users",  # list the hub's users
    # their active servers, default and named, to stop a trainee's when their access window closes
    # (it includes read:users:name: their names)
    "read:servers",
    "delete:servers",  # stop those servers
    # list and delete a closed trainee's tokens, OAuth ones included (JupyterHub has no scope that
    # deletes tokens without also creating them)
    "tokens",
]


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
            "description": "Keep course groups and memberships equal to the course folders; "
            "lock out trainees whose access window closed",
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


def apply_managed_services(c: Config, catalogue: Catalogue) -> None:
    """How the hub runs the services the other appliers added, last of them: each one it starts ends
    with it (hub_config/child_of_hub.py: a hub killed and started again finds its ports free), and
    each one it waits for (a command and a URL) gets the site's start timeout, past which JupyterHub
    exits."""
    timeout = catalogue.site.services_start_timeout
    services = []
    for service in c.JupyterHub.get("services", []):
        if service.get("command"):
            service = {
                **service,
                "command": [sys.executable, "-m", "hub_config.child_of_hub", *service["command"]],
            }
            if service.get("url"):
                service["timeout"] = timeout
        services.append(service)
    c.JupyterHub.services = services
