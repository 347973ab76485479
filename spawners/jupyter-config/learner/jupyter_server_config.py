# The learner's JupyterLab in the language of their hub: AILYS_LANG is set at each spawn
# (hub_config/hub_language.py). lab-settings/<lang>/overrides.json gives the default of JupyterLab's
# Settings > Language (the French pack: jupyterlab-language-pack-fr-FR); a learner's own choice
# there still wins. JupyterLab reads overrides from its app settings folder, so that folder is
# the language's (the default one holds nothing in this environment: docs/languages.md).
import os
from pathlib import Path

c = get_config()  # noqa: F821 (provided by the config loader)
lang = os.environ.get("AILYS_LANG", "")
settings = Path(__file__).resolve().parent / "lab-settings" / lang
if lang.isalpha() and (settings / "overrides.json").is_file():
    c.LabApp.app_settings_dir = str(settings)
