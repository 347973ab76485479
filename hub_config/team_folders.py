"""The team folders on the hub's host (local and container sites): what the spawners'
``team_folders`` callable gives (spawners/teams.py, TeamHomes), and the course sync's pass that
keeps every team's account, folder and group members equal to the course files.

On the Slurm site the nodes hold the accounts and groups: the sync runs the provisioning command
(hub_config/provision_team.py, through the hub's sudo rule) for each team instead.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

from .catalogue import Catalogue, LiveCatalogue
from .provision_team import UNCHANGED, team_hub_command
from .teams import home_links, teams_dir, teams_of

HOST_KINDS = ("local", "docker")
CHECKOUT = (
    Path(__file__).resolve().parent.parent
)  # where spawners/ is importable from  # sites whose servers run on the hub's host, with its accounts


def home_root(catalogue: Catalogue) -> Path:
    """Where the hub's host keeps homes (a team account's too) on this site's spawner kind."""
    spawner = catalogue.site.spawner
    root = spawner.docker.home_root if spawner.kind == "docker" else spawner.local.home_root
    return catalogue.data_dir / root


def folders_of(catalogue: Catalogue, username: str) -> dict:
    """TeamHomes.team_folders' answer: the teams folder and ``username``'s links."""
    links = {
        link: {"name": t.name, "folder": str(t.folder), "people": list(t.people)}
        for link, t in home_links(catalogue, username).items()
    }
    return {"dir": str(teams_dir(catalogue)), "links": links}


class TeamFolders:
    """TeamHomes.team_folders of a site: reads the course files at each call (last valid kept)."""

    def __init__(self, site_file: Path | str):
        self.site_file = str(site_file)
        self._live = LiveCatalogue(self.site_file, logging.getLogger("JupyterHub"))

    def __call__(self, username: str) -> dict:
        return folders_of(self._live.current(), username)

    def __repr__(self) -> str:  # as `ailys render` prints it
        return f"TeamFolders({self.site_file!r})"


def host_teams(catalogue: Catalogue) -> list[dict]:
    """Every team as ``python -m spawners.teams`` takes it on its input (plain values)."""
    root, min_uid = home_root(catalogue), catalogue.site.spawner.min_uid
    return [
        {
            "name": t.name,
            "folder": str(t.folder),
            "people": list(t.people),
            "home": str(root / t.name),
            "min_uid": min_uid,
        }
        for t in teams_of(catalogue)
    ]


def sync_team_folders(catalogue: Catalogue, gone: list[str] = ()) -> list[str]:
    """As root on a local or container site: each team's account, folder and group members as the
    files say (a member removed from the file leaves the group), and the Unix group of each team
    account of ``gone`` (teams removed from the files) emptied, its account and folder kept. Lines
    saying what changed. The Unix work is the spawners' code (spawners/teams.py), run as a command:
    hub_config names it only."""
    if catalogue.site.spawner.kind == "slurm":
        return sync_cluster_teams(catalogue, gone)
    if catalogue.site.spawner.kind not in HOST_KINDS or os.geteuid() != 0:
        return []
    teams = host_teams(catalogue)
    if not teams and not gone:
        return []
    done = subprocess.run(
        [sys.executable, "-m", "spawners.teams"],
        input=json.dumps({"teams": teams, "gone": list(gone)}),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=CHECKOUT,
    )
    if done.returncode:
        raise RuntimeError(f"team folders: {done.stderr.strip() or done.returncode}")
    return done.stdout.splitlines()


def sync_cluster_teams(catalogue: Catalogue, gone: list[str] = ()) -> list[str]:
    """On the Slurm site with ``spawner.slurm.teams``: ``ailys-provision-trainee team NAME`` for
    each team, and each team account of ``gone`` (the command empties a gone team's group), as the
    hub account through its sudo rule (the command is idempotent). One team's failure does not
    keep the others from their pass; all are named in the error."""
    settings = catalogue.site.spawner.slurm.teams
    if settings is None:
        return []
    command = team_hub_command(settings, catalogue.site_file)
    lines, failed = [], []
    for name in [t.name for t in teams_of(catalogue)] + list(gone):
        argv = [arg.format(username=name) for arg in command]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=180, cwd="/")
        except (OSError, subprocess.TimeoutExpired) as err:
            failed.append(f"{name}: {err}")
            continue
        if done.returncode:
            failed.append(f"{name}: {(done.stderr.strip() or done.stdout.strip() or done.returncode)}")
        lines += [line for line in done.stdout.splitlines() if not line.endswith(UNCHANGED)]
    if failed:
        raise RuntimeError("team provisioning: " + "; ".join(failed))
    return lines
