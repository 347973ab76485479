"""The port report: ``POST /hub/api/batchspawner {"port": N}``, by which a starting job tells the hub
where its server listens (spawners/slurm/launcher.py sends it).

The URL is batchspawner's (its batchspawner-singleuser posts the same body), the handler is not:
batchspawner's sets on the spawner *any* attribute a server's token posts, ``exec_prefix`` included,
a command the hub runs, so a learner could have the hub run commands of their choice. This one takes
a port and nothing else, from a server that is starting.

JupyterHub has no setting for a spawner's API handler, so the hub's configuration calls
``install_port_handler()`` (hub_config/jupyterhub_config.py, for a Slurm site) before JupyterHub
builds its handlers. Importing this module changes nothing.
"""

from __future__ import annotations

import hmac
import json

from jupyterhub.apihandlers import APIHandler, default_handlers
from tornado import web

ROUTE = r"/api/batchspawner"


class PortReportHandler(APIHandler):
    """POST /hub/api/batchspawner {"port": N}, with a starting server's own token: where it listens."""

    @web.authenticated
    def post(self):
        token = self.get_auth_token() or ""
        user = self.current_user
        spawner = next(
            (
                s
                for s in getattr(user, "spawners", {}).values()
                if s.api_token and hmac.compare_digest(s.api_token, token)
            ),
            None,
        )
        if spawner is None:
            raise web.HTTPError(403, "this token is not the token of a server")
        body = self.get_json_body() or {}
        port = body.get("port")
        if set(body) != {"port"} or not isinstance(port, int) or not 0 < port < 65536:
            raise web.HTTPError(400, 'expected {"port": <1-65535>} and nothing else')
        if spawner.pending != "spawn":
            raise web.HTTPError(409, f"{spawner._log_name} is not starting")
        spawner.port = port
        self.set_status(201)
        self.finish(json.dumps({"message": "port recorded"}))


def install_port_handler(handlers: list | None = None) -> None:
    """Serve ROUTE with PortReportHandler among JupyterHub's API handlers (``handlers``: JupyterHub's
    list, by default), in place of batchspawner's if it was imported. Calling it again changes nothing."""
    handlers = default_handlers if handlers is None else handlers
    for i, (pattern, *_) in enumerate(handlers):
        if pattern == ROUTE:
            handlers[i] = (ROUTE, PortReportHandler)
            return
    handlers.append((ROUTE, PortReportHandler))
