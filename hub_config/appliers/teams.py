"""The team servers: who reaches them, and how they start (docs/teams.md, "The team server").

Each team's shared server is the default server of its team account (names.team_name), started by
a member or mentor from /hub/spawn/<team account>. The role team-server-<course>-<team> lets the
team's members and mentors open it (access:servers) and start and stop it (servers, which also
lets them read its model, the spawn-pending page's need), for that one account and no other.
Nobody else holds it: an instructor's role reaches the course group's servers, and the team
account is in no course group. It is granted like the course roles (access.py): by the
authenticator at each login and refresh (a team added on disk needs no restart), and at start to
the team and mentor groups, so a member added to the group by the sync reaches it before their
next refresh.
"""

from __future__ import annotations

from traitlets.config import Config

from ..catalogue import Catalogue
from ..team_servers import TeamServers
from ..teams import TeamView, teams_of, teams_of_person
from .spawner import TEAM_SERVER_EXTENSIONS, singleuser_args


def team_server_scopes(team: TeamView) -> list[str]:
    account = f"user={team.name}"
    return [f"access:servers!{account}", f"servers!{account}"]


def team_server_role(team: TeamView) -> dict:
    return {
        "name": team.server_role,
        "description": f"Members and mentors of team {team.team} of {team.slug}: open, start and "
        "stop its shared server",
        "scopes": team_server_scopes(team),
    }


def team_roles_of(username: str, catalogue: Catalogue) -> list[dict]:
    """The team-server roles ``username`` holds as a member or mentor (Authenticator.manage_roles)."""
    return [team_server_role(t) for t in teams_of_person(catalogue, username)]


def managed_team_roles(catalogue: Catalogue) -> list[dict]:
    """Every team-server role with its holders, the team and mentor groups (load_managed_roles)."""
    return [{**team_server_role(t), "groups": [t.name, t.mentor_group]} for t in teams_of(catalogue)]


def apply_team_servers(c: Config, catalogue: Catalogue) -> None:
    """Every spawner kind mixes in spawners.team_server.TeamServer; a team account's server gets
    collaboration, the team folder and the team's course there."""
    spawner = catalogue.site.spawner
    partition = spawner.slurm.default_partition if spawner.kind == "slurm" else None
    c.TeamServer.team_servers = TeamServers(catalogue.site_file, partition)
    c.TeamServer.team_args = singleuser_args(TEAM_SERVER_EXTENSIONS)
