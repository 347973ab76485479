"""Learner servers as containers (spawner.kind docker): spawners.docker.ContainerSpawner, talking
to the site's podman service, running each course's environment image (docs/containers.md)."""

from __future__ import annotations

from pathlib import PurePosixPath

from traitlets.config import Config

from ..catalogue import Catalogue
from ..profiles import CourseProfiles
from .spawner import singleuser_cmd

# Where every course image holds its environment (images.IMAGE_PREFIX, written out: hub_config
# names no package of ours but as strings; tests/unit/test_docker_site.py checks that they agree).
IMAGE_PREFIX = PurePosixPath("/opt/ailys-env")
# The image's copy of our learner Jupyter config, at the same place as in the hub's environment.
IMAGE_JUPYTER_CONFIG = IMAGE_PREFIX / "share" / "ailys-hub" / "jupyter-config" / "learner"


def apply_docker(c: Config, catalogue: Catalogue) -> None:
    site, docker = catalogue.site, catalogue.site.spawner.docker
    c.JupyterHub.spawner_class = "spawners.docker.ContainerSpawner"
    # The image's environment, not the hub's: the same server command, from the image's Python.
    c.Spawner.cmd = singleuser_cmd(str(IMAGE_PREFIX / "bin" / "python3"))
    c.Spawner.environment = {
        **c.Spawner.get("environment", {}),
        "JUPYTER_CONFIG_PATH": str(IMAGE_JUPYTER_CONFIG),
    }
    c.ContainerSpawner.client_kwargs = {"base_url": f"unix://{catalogue.data_dir / docker.socket}"}
    if docker.image_store:  # else the store's default (images.store.DEFAULT_ROOT)
        c.ContainerSpawner.image_store = str((catalogue.site_file.parent / docker.image_store).resolve())
    c.ContainerSpawner.network_name = docker.network
    c.ContainerSpawner.home_root = str(catalogue.data_dir / docker.home_root)
    c.ContainerSpawner.courses_dir = str(catalogue.courses_dir)
    c.ContainerSpawner.min_uid = site.spawner.min_uid
    c.ContainerSpawner.pids_limit = docker.pids_limit
    c.ContainerSpawner.tmp_size = docker.tmp_size
    # Read at each launch form and start: a new course folder needs no restart.
    c.ContainerSpawner.profiles = CourseProfiles(catalogue.site_file, None)
