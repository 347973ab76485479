"""Where and how learner servers start."""

import sys
from pathlib import Path

from traitlets.config import Config

from ..catalogue import Catalogue
from ..profiles import CourseProfiles
from ..provision import hub_command
from ..provision_team import team_hub_command

# Server extensions of a learner's server, by import name: True loads it, False keeps it out. The
# environment's config (<venv>/etc/jupyter/jupyter_server_config.d) enables every extension
# installed in it, and ServerApp adds any it does not find named here, so singleuser_args() also
# turns off every other one that the hub's environment enables (environment_server_extensions).
LEARNER_SERVER_EXTENSIONS: dict[str, bool] = {
    "jupyterlab": True,  # the learner's interface
    "jupyter_server_terminals": True,  # JupyterLab's terminals
    # nbgrader's learner side (Assignments panel: fetch, submit, feedback; validate), through the
    # exchange service (grading/exchange/, configured in jupyter-config/learner/nbgrader_config.py),
    # imported at the panel's first request: at the server's start it cost 23 MB and 0.25 s of CPU
    # (grading/learner_extension.py, docs/scaling.md).
    "grading.learner_extension": True,
    "nbgrader.server_extensions.assignment_list": False,
    "nbgrader.server_extensions.course_list": False,
    "nbgrader.server_extensions.validate_assignment": False,
    "nbgrader.server_extensions.formgrader": False,  # instructors' grading: never a learner's
    "voila.server_extension": False,  # demos are served by the Voilà gallery, not learners' servers
    "notebook": False,  # Notebook 7's interface; learners work in JupyterLab (default_url /lab)
    "notebook_shim": False,  # serves Notebook-era server extensions, and none is loaded
    "jupyter_lsp": False,  # no language server is installed, so it would only look for them
    # Real-time collaboration: in team servers only (TEAM_SERVER_EXTENSIONS, docs/teams.md).
    "jupyter_server_ydoc": False,
    "jupyter_server_fileid": False,  # the file ids that collaboration rooms are named by
}

# A team account's shared server (hub_config/appliers/teams.py): a learner's, with collaboration,
# and without nbgrader's learner side: the team account is no learner of the course (the exchange
# refuses it).
TEAM_SERVER_EXTENSIONS: dict[str, bool] = LEARNER_SERVER_EXTENSIONS | {
    "jupyter_server_ydoc": True,
    "jupyter_server_fileid": True,
    "grading.learner_extension": False,
}


# jupyterhub-singleuser, less one import. When rfc3987_syntax is installed (jupyter_events wants
# jsonschema[format-nongpl]), jsonschema imports it to check the "iri" formats, and that import
# builds ~35 Lark parsers: 0.7 s of CPU and 16 MB in every server, for formats that no schema in
# the environment uses (jupyter_server#1559, jsonschema#1428). Marked missing, it is skipped as
# when not installed. Only in the server's own process: kernels and terminals are new processes.
SINGLEUSER_MAIN = (
    "import sys; sys.modules['rfc3987_syntax'] = None; sys.argv[0] = 'jupyterhub-singleuser'; "
    "from jupyterhub.singleuser import main; sys.exit(main())"
)


def singleuser_cmd(python: str = sys.executable) -> list[str]:
    return [python, "-c", SINGLEUSER_MAIN]


def environment_server_extensions() -> set[str]:
    """The server extensions that the hub's environment enables, as ServerApp finds them."""
    from jupyter_core.paths import jupyter_config_path
    from jupyter_server.extension.config import ExtensionConfigManager

    found = ExtensionConfigManager(read_config_path=jupyter_config_path()).get_jpserver_extensions()
    return {name for name, enabled in found.items() if enabled}


def singleuser_args(extensions: dict[str, bool] = LEARNER_SERVER_EXTENSIONS) -> list[str]:
    """``extensions``, and every other extension of the environment off: one installed later
    (a package's dependency, a site's addition) stays out until it is named above."""
    loaded = dict.fromkeys(sorted(environment_server_extensions() - extensions.keys()), False) | extensions
    return [f"--ServerApp.jpserver_extensions={loaded!r}"]


# JupyterLab's page config for learners (spawners/jupyter-config/README.md), which `make deps`
# copies into the environment: it hides the parts whose server side is left out above.
LEARNER_JUPYTER_CONFIG = Path(sys.prefix) / "share" / "ailys-hub" / "jupyter-config" / "learner"


# The Python of every course image (images.IMAGE_PREFIX/bin/python3; spawners/slurm/container.py).
IMAGE_PYTHON = "/opt/ailys-env/bin/python3"


def apply_spawner(c: Config, catalogue: Catalogue) -> None:
    spawner = catalogue.site.spawner
    c.Spawner.start_timeout = spawner.effective_start_timeout
    c.Spawner.http_timeout = spawner.http_timeout
    c.Spawner.poll_interval = spawner.poll_interval
    c.Spawner.default_url = "/lab"
    # The same environment as the hub, by absolute path: learners' processes do not inherit PATH.
    c.Spawner.cmd = singleuser_cmd()
    c.Spawner.args = singleuser_args()
    c.Spawner.environment = {"JUPYTER_CONFIG_PATH": str(LEARNER_JUPYTER_CONFIG)}
    # Servers outlive a hub restart; the hub finds them again from its database.
    c.JupyterHub.cleanup_servers = False
    if spawner.kind == "slurm":
        _slurm(c, catalogue)
    elif spawner.kind == "docker":
        from .docker import apply_docker  # it imports this module's singleuser_cmd

        apply_docker(c, catalogue)
    else:
        _local(c, catalogue)


def _local(c: Config, catalogue: Catalogue) -> None:
    c.JupyterHub.spawner_class = "spawners.local.LocalSpawner"
    c.LocalSpawner.home_root = str(catalogue.data_dir / catalogue.site.spawner.local.home_root)
    c.LocalSpawner.courses_dir = str(catalogue.courses_dir)
    c.LocalSpawner.min_uid = catalogue.site.spawner.min_uid


def _slurm(c: Config, catalogue: Catalogue) -> None:
    slurm = catalogue.site.spawner.slurm
    c.JupyterHub.spawner_class = "spawners.slurm.SlurmSpawner"
    # Read at each launch form and start: a new course folder needs no restart.
    c.SlurmSpawner.profiles = CourseProfiles(catalogue.site_file, slurm.default_partition)
    c.SlurmSpawner.node_addresses = dict(slurm.node_addresses)
    if slurm.slurm_conf:
        c.SlurmSpawner.slurm_env = {
            "SLURM_CONF": str((catalogue.site_file.parent / slurm.slurm_conf).resolve())
        }
    c.SlurmSpawner.exec_prefix = slurm.exec_prefix
    c.SlurmSpawner.slurm_command_timeout = slurm.command_timeout
    c.SlurmSpawner.min_uid = catalogue.site.spawner.min_uid
    # The server in the course's HPC image (spawners/slurm/container.py), or in this environment.
    c.SlurmSpawner.container = slurm.container
    c.SlurmSpawner.ch_run = str(slurm.ch_run)
    # In the image too, jupyterhub-singleuser less its slow import (SINGLEUSER_MAIN), by the image's Python.
    c.SlurmSpawner.container_cmd = singleuser_cmd(IMAGE_PYTHON)
    if slurm.image_store:
        c.SlurmSpawner.image_store = str((catalogue.site_file.parent / slurm.image_store).resolve())
    if slurm.trainees:  # a trainee's account is made at their first start (hub_config/provision.py)
        c.SlurmSpawner.provision_command = hub_command(slurm.trainees, catalogue.site_file)
    if slurm.teams:  # a team's account, group and folder, refreshed before its server starts
        c.SlurmSpawner.team_provision_command = team_hub_command(slurm.teams, catalogue.site_file)
    # Not Spawner.ip: the job reports the node it runs on, and the hub reaches it there.
