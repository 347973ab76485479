"""The idle culler (jupyterhub-idle-culler) as a hub-managed service."""

import sys

from traitlets.config import Config

from ..names import CULLER_SERVICE
from ..schema import Site
from ._lists import append


def apply_culler(c: Config, site: Site) -> None:
    culler = site.culler
    if not culler.enabled:
        return
    append(
        c.JupyterHub,
        "services",
        {
            "name": CULLER_SERVICE,
            "command": [
                sys.executable,
                "-m",
                "jupyterhub_idle_culler",
                f"--timeout={culler.timeout}",
                f"--cull-every={culler.every}",
                f"--max-age={culler.max_age}",
                f"--concurrency={culler.concurrency}",
            ],
        },
    )
    append(
        c.JupyterHub,
        "load_roles",
        {
            "name": CULLER_SERVICE,
            "description": "Stop servers that have been idle too long",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": [CULLER_SERVICE],
        },
    )
