"""The assignment exchange (grading/exchange/) as a hub-managed service, and the token scopes
that let learners' servers reach it and nothing more.

Every user gets access:services!service=exchange (the service itself decides, from the hub's
course groups, what each may see), and servers' tokens carry that one scope beyond the
defaults, so nbgrader in a learner's server, terminal or Slurm job reaches the exchange with
$JUPYTERHUB_API_TOKEN. The service's own token may only read users' names and groups.
"""

import sys

from traitlets.config import Config

from .. import names
from ..catalogue import Catalogue
from ._lists import append

SERVICE = names.EXCHANGE_SERVICE
ACCESS = names.access_scope(SERVICE)
# What the service asks the hub: whose groups make them learner or instructor of a course.
SERVICE_SCOPES = ["read:users:name", "read:users:groups"]
# JupyterHub's default `server` role (users:activity, reach its own server) plus the exchange.
SERVER_TOKEN_SCOPES = ["users:activity!user", "access:servers!server", ACCESS]


def exchange_url(catalogue: Catalogue) -> str:
    """Where learners' servers and the proxy reach the service (its routes start with the prefix)."""
    ex = catalogue.site.exchange
    return f"http://{ex.ip}:{ex.port}"


def exchange_service_url(catalogue: Catalogue) -> str:
    """$AILYS_EXCHANGE_URL: the service's address and prefix, which nbgrader's exchange classes call."""
    return exchange_url(catalogue) + names.service_prefix(SERVICE, catalogue.site.listen.base_url)


def apply_exchange(c: Config, catalogue: Catalogue) -> None:
    url = exchange_url(catalogue)
    append(
        c.JupyterHub,
        "services",
        {
            "name": SERVICE,
            "url": url,
            "display": False,  # an API for nbgrader, not a page
            "command": [sys.executable, "-m", "grading.exchange.service", str(catalogue.site_file)],
        },
    )
    append(
        c.JupyterHub,
        "load_roles",
        {
            "name": SERVICE,
            "description": "Read users' course groups to decide who may fetch, submit, collect",
            "scopes": SERVICE_SCOPES,
            "services": [SERVICE],
        },
    )
    c.JupyterHub.extra_user_scopes = {*c.JupyterHub.get("extra_user_scopes", set()), ACCESS}
    c.Spawner.server_token_scopes = SERVER_TOKEN_SCOPES
    # nbgrader's exchange classes in learners' servers read it (spawners/jupyter-config/learner/).
    env = c.Spawner.get("environment", {})
    c.Spawner.environment = {**env, "AILYS_EXCHANGE_URL": exchange_service_url(catalogue)}
