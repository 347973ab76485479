"""Where the hub keeps its state: database and cookie secret, all under the data folder."""

from traitlets.config import Config

from ..catalogue import Catalogue
from ..secrets import Secrets


def database_url(catalogue: Catalogue) -> str:
    return catalogue.site.database_url or f"sqlite:///{catalogue.data_dir / 'jupyterhub.sqlite'}"


def apply_storage(c: Config, catalogue: Catalogue, secrets: Secrets) -> None:
    c.JupyterHub.db_url = database_url(catalogue)
    c.JupyterHub.cookie_secret_file = str(secrets.cookie_secret_file)
    c.JupyterHub.pid_file = str(catalogue.data_dir / "jupyterhub.pid")
