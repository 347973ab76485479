# The hub's configuration: it only orders the layers. Each layer lives in hub_config/.
#   1. the site (AILYS_SITE, default sites/local.yaml) and its courses, validated
#   2. one applier per concern (hub_config/appliers/); for a Slurm site, the job's port-report handler
#   3. local overrides: <data_dir>/jupyterhub_config.d/*.py, in name order
import os
import sys
from pathlib import Path

from hub_config.appliers import apply_all
from hub_config.catalogue import CatalogueError, load_catalogue
from hub_config.hub_language import install as install_page_language
from hub_config.secrets import load_secrets
from hub_config.team_servers import install_team_server_access

c = get_config()  # noqa: F821 (provided by JupyterHub)

site_file = os.environ.get("AILYS_SITE") or Path(__file__).parent / "sites" / "local.yaml"
try:
    catalogue = load_catalogue(site_file)
except CatalogueError as err:
    sys.exit(f"AILyS Hub: not starting, the catalogue is invalid:\n{err}")

apply_all(c, catalogue, load_secrets(catalogue.data_dir))
# The request's language in every hub page's namespace (JupyterHub has no setting for it).
install_page_language()
# Members and mentors open their team's server without JupyterHub's "Authorize access" page.
install_team_server_access(site_file)

if catalogue.site.spawner.kind == "slurm":
    # The job's port report (spawners/slurm/port_report.py): JupyterHub has no setting for a
    # spawner's API handler, so it is added to JupyterHub's list before the hub builds its handlers.
    from spawners.slurm import install_port_handler

    install_port_handler()

for drop_in in sorted((catalogue.data_dir / "jupyterhub_config.d").glob("*.py")):
    exec(compile(drop_in.read_text(), drop_in, "exec"), {"c": c})

if os.geteuid() != 0 and catalogue.site.spawner.kind == "local":  # a Slurm hub submits through sudo
    print(
        "AILyS Hub: not running as root, so every learner server runs as this one account. "
        "Fine for trying the platform, not for real learners.",
        file=sys.stderr,
    )
