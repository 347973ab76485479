"""Team folders in homes: the spawners' TeamHomes (spawners/teams.py) learn each person's teams
from the course files at each spawn (hub_config/team_folders.py), so a team added needs no restart."""

from traitlets.config import Config

from ..catalogue import Catalogue
from ..team_folders import TeamFolders


def apply_team_folders(c: Config, catalogue: Catalogue) -> None:
    c.TeamHomes.team_folders = TeamFolders(catalogue.site_file)
