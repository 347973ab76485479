"""Where and how learner servers start."""

import sys
from pathlib import Path

from traitlets.config import Config

from ..catalogue import Catalogue

# Server extensions a learner server loads. The environment also holds voila, nbgrader's
# instructor tools and the LSP bridge; leaving them out of learner servers saves memory and
# start time (see `make bench-spawn`).
LEARNER_SERVER_EXTENSIONS = ("jupyterlab", "jupyter_server_terminals")


def singleuser_args(extensions=LEARNER_SERVER_EXTENSIONS) -> list[str]:
    enabled = ", ".join(f"'{name}': True" for name in extensions)
    return [f"--ServerApp.jpserver_extensions={{{enabled}}}"]


def apply_spawner(c: Config, catalogue: Catalogue) -> None:
    site = catalogue.site
    c.JupyterHub.spawner_class = "spawners.local.LocalSpawner"
    c.Spawner.start_timeout = site.spawner.start_timeout
    c.Spawner.http_timeout = site.spawner.http_timeout
    c.Spawner.default_url = "/lab"
    # The same environment as the hub, by absolute path: learners' processes do not inherit PATH.
    c.Spawner.cmd = [str(Path(sys.executable).parent / "jupyterhub-singleuser")]
    c.Spawner.args = singleuser_args()
    c.LocalSpawner.home_root = str(catalogue.data_dir / site.spawner.local.home_root)
    c.LocalSpawner.courses_dir = str(catalogue.courses_dir)
    # Servers outlive a hub restart; the hub finds them again from its database.
    c.JupyterHub.cleanup_servers = False
