"""The `--site` option of every `ailys` command, and what it resolves to.

Shared by the admin command line (hub_config/cli.py) and the grading commands it runs
(grading/cli.py, grading/export.py), so a site is named the same way everywhere: a name of
hub_config/sites/<name>.yaml or a path, defaulting to $AILYS_SITE, then "local".
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from .catalogue import Catalogue, CatalogueError, load_catalogue

SITES = Path(__file__).parent / "sites"

site_option = click.option(
    "--site",
    default=lambda: os.environ.get("AILYS_SITE", "local"),
    show_default="local or $AILYS_SITE",
    help="Site name (hub_config/sites/<name>.yaml) or path to a site file.",
)


def site_file(site: str) -> Path:
    """A site name (local, slurm, ...) or a path to a site file."""
    path = SITES / f"{site}.yaml" if "/" not in site and not site.endswith(".yaml") else Path(site)
    if not path.is_file():
        raise click.BadParameter(f"no site file {path}", param_hint="--site")
    return path


def catalogue_or_exit(site: str) -> Catalogue:
    """The site's validated catalogue; if invalid, every problem on stderr and exit status 1."""
    try:
        return load_catalogue(site_file(site))
    except CatalogueError as err:
        click.echo(f"The catalogue is invalid ({len(err.problems)} problems):", err=True)
        for problem in err.problems:
            click.echo(f"  {problem}", err=True)
        sys.exit(1)
