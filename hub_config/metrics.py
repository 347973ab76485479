"""Metrics of AILyS Hub in Prometheus's format: the one scope that reads them, the /metrics
handler our tornado services serve, and the hub-side spawn counters.

JupyterHub serves its own /hub/metrics to a token with ``read:metrics``; our services (the
exchange, the gallery) serve <prefix>metrics to a token with METRICS_SCOPE, a custom scope of
this hub that grants nothing else, so a metrics reader (Prometheus's token, appliers/metrics.py)
cannot fetch a submission, and a learner (who holds access:services!service=exchange) cannot read
the metrics. Names follow Prometheus's conventions: ``ailys_<part>_<what>_total`` for counters,
``_seconds`` for durations; docs/metrics.md lists them.
"""

from __future__ import annotations

import asyncio
import json

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, Counter, generate_latest
from tornado import web

METRICS_SCOPE = "custom:ailys-metrics:read"
CUSTOM_SCOPES = {
    METRICS_SCOPE: {"description": "Read the Prometheus metrics of AILyS Hub's services, nothing else."}
}

# In the hub process: JupyterHub's /hub/metrics serves prometheus_client's default registry.
SPAWNS = Counter("ailys_spawns_total", "Server starts asked of the hub, by spawner kind", ["kind"])
SPAWN_FAILURES = Counter(
    "ailys_spawn_failures_total", "Server starts that failed (error or timeout), by spawner kind", ["kind"]
)


def spawner_kind(spawner) -> str:
    """local | slurm | docker, from the spawner's class (a profile may pick another kind)."""
    names = " ".join(cls.__name__ for cls in type(spawner).__mro__).lower()
    return next((k for k in ("slurm", "docker") if k in names), "local")


class SpawnHook:
    """Spawner.pre_spawn_hook: count the start, and its failure when its future ends in one; a
    failure is also recorded in the hub database (``ailys_spawn_failure``, footprint/usage.py),
    for `ailys usage`. ``database_url``: the hub's; empty, count only."""

    def __init__(self, database_url: str = ""):
        self.database_url = database_url

    def __repr__(self) -> str:  # `ailys render` shows the hook, never the database's password
        return f"{type(self).__module__}.{type(self).__name__}()"

    def __call__(self, spawner) -> None:
        kind = spawner_kind(spawner)
        SPAWNS.labels(kind).inc()
        asyncio.ensure_future(self.watch(spawner, kind))

    async def watch(self, spawner, kind: str) -> None:
        await asyncio.sleep(0)  # the hub sets _spawn_future once the start is under way
        future = getattr(spawner, "_spawn_future", None)
        if future is None:
            return
        try:
            await asyncio.shield(future)
        except Exception as err:  # noqa: BLE001 (any failure to start is a failure; the hub logs why)
            SPAWN_FAILURES.labels(kind).inc()
            if self.database_url:
                await asyncio.to_thread(self.record, spawner, kind, err)

    def record(self, spawner, kind: str, err: Exception) -> None:
        import datetime as dt

        from footprint.spawn_failures import SpawnFailure, record_spawn_failure  # the usage records

        from .names import course_of_group

        course = (spawner.user_options or {}).get("course")
        if not course:  # else the learner's one course, as footprint's service reads it
            slugs = {course_of_group(g.name) for g in spawner.user.groups} - {None}
            course = slugs.pop() if len(slugs) == 1 else None
        reason = (getattr(err, "reason", "") or type(err).__name__) + f": {err}"[:250]
        failure = SpawnFailure(spawner.user.name, course, kind, dt.datetime.now(dt.UTC), reason)
        try:
            record_spawn_failure(self.database_url, failure)
        except Exception:  # noqa: BLE001 (a usage record never breaks the hub)
            spawner.log.exception("could not record the spawn failure of %s", spawner.user.name)


class MetricsHandler(web.RequestHandler):
    """GET <prefix>metrics: this process's registry, to a hub token holding METRICS_SCOPE."""

    def initialize(self, hub_auth, registry=REGISTRY):
        self.hub_auth, self.registry = hub_auth, registry

    def check_xsrf_cookie(self):
        pass  # token only: no cookie is read

    def write_error(self, status_code: int, **kwargs) -> None:
        err = kwargs.get("exc_info", (None, None))[1]
        message = (
            err.log_message % err.args if isinstance(err, web.HTTPError) and err.log_message else self._reason
        )
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message, "status": status_code}))

    async def get(self):
        token = self.hub_auth.get_token(self, in_cookie=False)
        model = await self.hub_auth.user_for_token(token, sync=False) if token else None
        if not model:
            raise web.HTTPError(401, "a hub API token with the scope %s is needed", METRICS_SCOPE)
        if METRICS_SCOPE not in model.get("scopes", []):
            raise web.HTTPError(403, "this token lacks the scope %s", METRICS_SCOPE)
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.finish(generate_latest(self.registry))
