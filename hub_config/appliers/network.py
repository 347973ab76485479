"""Where the proxy, the hub and the proxy's API listen."""

from traitlets.config import Config

from ..schema import Site
from ..secrets import Secrets


def apply_network(c: Config, site: Site, secrets: Secrets) -> None:
    listen = site.listen
    c.JupyterHub.bind_url = f"http://{listen.ip}:{listen.port}{listen.base_url}"
    c.JupyterHub.hub_bind_url = f"http://127.0.0.1:{listen.hub_port}"
    # The proxy runs beside the hub, not under it (`ailys up` starts both), so learners'
    # connections survive a hub restart or upgrade.
    c.ConfigurableHTTPProxy.should_start = False
    c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{listen.proxy_api_port}"
    c.ConfigurableHTTPProxy.auth_token = secrets.proxy_token
    # The proxy restarted (by its service manager) knows no route but the hub's: the hub's periodic
    # check puts them back, and the same check records learners' activity.
    c.JupyterHub.last_activity_interval = listen.route_check_every
