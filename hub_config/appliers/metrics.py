"""Metrics: JupyterHub's /hub/metrics behind ``read:metrics``, our services' /metrics behind the
custom scope of hub_config/metrics.py, Prometheus's token holding those two and nothing else,
and the spawn counters (per spawner kind, failures) added to the hub's registry by a hook."""

from traitlets.config import Config

from ..catalogue import Catalogue
from ..metrics import CUSTOM_SCOPES, METRICS_SCOPE, SpawnHook
from ..names import PROMETHEUS_SERVICE
from ..secrets import Secrets
from ._lists import append
from .storage import database_url

PROMETHEUS_SCOPES = ["read:metrics", METRICS_SCOPE]


def apply_metrics(c: Config, catalogue: Catalogue, secrets: Secrets) -> None:
    c.JupyterHub.authenticate_prometheus = True  # JupyterHub's default; said here, since we rely on it
    c.JupyterHub.custom_scopes = {**c.JupyterHub.get("custom_scopes", {}), **CUSTOM_SCOPES}
    c.Spawner.pre_spawn_hook = SpawnHook(database_url(catalogue))  # failures kept for `ailys usage`
    if not secrets.prometheus_token:
        return  # no token made (a rendering without secrets): no service to give it to
    append(c.JupyterHub, "services", {"name": PROMETHEUS_SERVICE, "api_token": secrets.prometheus_token})
    append(
        c.JupyterHub,
        "load_roles",
        {
            "name": PROMETHEUS_SERVICE,
            "description": "Read the hub's and our services' metrics (Prometheus), nothing else",
            "scopes": PROMETHEUS_SCOPES,
            "services": [PROMETHEUS_SERVICE],
        },
    )
