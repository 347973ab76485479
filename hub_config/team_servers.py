"""Which hub accounts are team accounts, and what their server is (spawners/team_server.py).

``TeamServers`` is the spawners' ``team_servers`` callable: for a team account (hub_config/teams.py,
``team_of_account``) the settings of its shared server, None for a person. It reads the course
files at each call (last valid kept), so a team added on disk needs no restart.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from .catalogue import Catalogue, LiveCatalogue
from .profiles import profiles_for
from .teams import team_of_account


def team_server(
    catalogue: Catalogue, username: str, default_partition: str | None, today: dt.date
) -> dict | None:
    """The server settings of team account ``username`` (spawners/team_server.py), else None. Its
    course is the team's: the launch form offers that course only, with its resources."""
    team = team_of_account(catalogue, username)
    if team is None:
        return None
    return {
        "course": team.slug,
        "folder": str(team.folder),
        "group": team.name,
        "profiles": profiles_for(catalogue, [team.course.learner_group], default_partition, today),
    }


class TeamServers:
    """TeamServer.team_servers of a site (spawners/team_server.py)."""

    def __init__(self, site_file: Path | str, default_partition: str | None):
        self.site_file = str(site_file)
        self.default_partition = default_partition
        self._live = LiveCatalogue(self.site_file, logging.getLogger("JupyterHub"))

    def __call__(self, username: str) -> dict | None:
        return team_server(self._live.current(), username, self.default_partition, dt.date.today())

    def __repr__(self) -> str:  # as `ailys render` prints it
        return f"TeamServers({self.site_file!r}, default_partition={self.default_partition!r})"
