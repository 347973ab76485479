"""Which hub accounts are team accounts, and what their server is (spawners/team_server.py).

``TeamServers`` is the spawners' ``team_servers`` callable: for a team account (hub_config/teams.py,
``team_of_account``) the settings of its shared server, None for a person. It reads the course
files at each call (last valid kept), so a team added on disk needs no restart.

``install_team_server_access`` spares members and mentors JupyterHub's "Authorize access" page
when they open their team's server: JupyterHub asks it for any server that is not the visitor's
own. The page grants nothing (the token it leads to holds only the scopes the visitor's roles
give, and the team server checks them), so it is only a click in the way, at every first visit.
"""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path
from urllib.parse import unquote

from jupyterhub.apihandlers.auth import OAuthAuthorizeHandler

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


SERVER_CLIENT = "jupyterhub-user-"  # JupyterHub's OAuth client id of <name>'s default server


def account_of_client(client_id: str) -> str | None:
    """The account whose default server ``client_id`` is (JupyterHub names it
    jupyterhub-user-<quoted name>); None for a service's client."""
    return unquote(client_id[len(SERVER_CLIENT) :]) if client_id.startswith(SERVER_CLIENT) else None


def _no_confirm_for_team_servers(original, is_team_account):
    def needs_oauth_confirm(self, user, oauth_client, requested_scopes):
        account = account_of_client(oauth_client.identifier)
        if account and is_team_account(account):
            return False
        return original(self, user, oauth_client, requested_scopes)

    needs_oauth_confirm._ailys = True
    return needs_oauth_confirm


def install_team_server_access(site_file: Path | str) -> None:
    """No "Authorize access" page for a team server (see the module's docstring), once per process."""
    if getattr(OAuthAuthorizeHandler.needs_oauth_confirm, "_ailys", False):
        return
    live = LiveCatalogue(str(site_file), logging.getLogger("JupyterHub"))
    OAuthAuthorizeHandler.needs_oauth_confirm = _no_confirm_for_team_servers(
        OAuthAuthorizeHandler.needs_oauth_confirm,
        lambda name: team_of_account(live.current(), name) is not None,
    )
