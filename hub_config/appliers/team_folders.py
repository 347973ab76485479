"""Team folders in homes: the spawners' TeamLinks (spawners/teams.py: TeamHomes on the hub's host,
the Slurm spawner for a person's job) learn each person's teams from the course files at each
spawn (hub_config/team_folders.py), so a team added needs no restart."""

from traitlets.config import Config

from ..catalogue import Catalogue
from ..team_folders import TeamFolders


def apply_team_folders(c: Config, catalogue: Catalogue) -> None:
    c.TeamLinks.team_folders = TeamFolders(catalogue.site_file)
