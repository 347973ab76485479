"""French and English on every hub page and in JupyterLab (docs/languages.md).

Our templates (hub_config/templates/) come first on JupyterHub's template path: each extends
JupyterHub's page of the same name ("templates/<name>") and translates its visible strings through
the catalogue, which JupyterHub's Jinja environment loads as an extension (hub_config/i18n.py);
jupyterhub_config.py installs the per-request language (hub_config/hub_language.py). The learner's
server gets the user's language in AILYS_LANG, which its JupyterLab follows; the launch form of
the Slurm and container spawners gets the catalogue (spawners/launch_form.py).
"""

from traitlets.config import Config

from .. import i18n
from ..hub_language import ENV, spawn_language, spawn_translations


def apply_languages(c: Config) -> None:
    c.JupyterHub.template_paths = [str(i18n.TEMPLATES), *c.JupyterHub.get("template_paths", [])]
    options = c.JupyterHub.get("jinja_environment_options", {})
    c.JupyterHub.jinja_environment_options = {
        **options,
        "extensions": [*options.get("extensions", []), i18n.EXTENSION],
        "lstrip_blocks": True,  # as babel.cfg extracts them
    }
    c.Spawner.environment = {**c.Spawner.get("environment", {}), ENV: spawn_language}
    # The launch form of the Slurm and container spawners, in the reader's language.
    c.LaunchForm.translations = spawn_translations
