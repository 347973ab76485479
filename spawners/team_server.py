"""A team's shared server: the default server of the team account (docs/teams.md, "The team server").

Mixed into every spawner (local, Slurm, container). The hub spawns the team account's server when
a member or a mentor asks for it (/hub/spawn/<team account>); that server runs as the team account,
whose primary group is the team's Unix group, so members never run code as one another. What
makes it a team server rather than a learner's, applied before each start
(``run_pre_spawn_hook``, after the launch options):

- real-time collaboration loaded (``team_args``: jupyter-collaboration's server extensions on;
  jupyter-config/team, put before the learner config, turns its JupyterLab plugins back on);
- the team folder as its root (JUPYTERHUB_ROOT_DIR), so every file lives there and outlives the
  server;
- umask 0002 in the server's process, inherited by its kernels and terminals: what one member
  makes stays writable by the others (the folder's group and setgid bit do the rest);
- only the team's course on the launch form (``team_profiles``), with that course's resources.

``team_servers`` says whether an account is a team's: the hub's configuration gives a callable
(hub_config/team_servers.py) that reads the course files at each call, so a team added on disk
needs no restart.
"""

from __future__ import annotations

import os

from jupyterhub.spawner import SpawnException
from traitlets import Any, Integer, List, Unicode
from traitlets.config import Configurable


class TeamFolderMissing(SpawnException):
    def __init__(self, message: str):
        super().__init__(message, reason="team-folder-missing", status_code=503)
        self.jupyterhub_message = message


def with_umask(cmd: list[str], umask: int) -> list[str]:
    """``cmd`` (``python -c CODE ...``, as hub_config's singleuser_cmd makes it) setting ``umask``
    first, in the server's own process: no shell between the spawner and the server."""
    if len(cmd) < 3 or cmd[1] != "-c":
        raise ValueError(f"a team server's command must be `python -c CODE`, not {cmd!r}")
    prefix = f"import os; os.umask(0o{umask:03o}); "
    if cmd[2].startswith(prefix):
        return list(cmd)
    return [cmd[0], "-c", prefix + cmd[2], *cmd[3:]]


def team_config_of(learner_path: str) -> str:
    """The team config beside a learner config folder (spawners/jupyter-config/README.md)."""
    return os.path.join(os.path.dirname(learner_path.split(os.pathsep)[0].rstrip("/")), "team")


class TeamServer(Configurable):
    """Spawner settings of a team account's server (see the module's docstring)."""

    team_servers = Any(
        None,
        allow_none=True,
        help="Callable(username) -> None for a person, or for a team account a dict: 'folder' (the "
        "team folder, the server's root), 'group' (the team's Unix group), 'course' (its course's "
        "slug), 'profiles' ({slug: profile} of that one course, as the spawner's profiles).",
    ).tag(config=True)

    team_args = List(
        Unicode(),
        help="Spawner.args of a team server (its server extensions: collaboration on).",
    ).tag(config=True)

    team_umask = Integer(0o002, help="umask of a team server and its kernels: group-writable files.").tag(
        config=True
    )

    def team(self) -> dict | None:
        """This account's team server settings, None if it is a person's account."""
        if self.team_servers is None or getattr(self, "user", None) is None:
            return None
        return self.team_servers(self.user.name)

    def team_profiles(self) -> dict[str, dict] | None:
        """The launch form's courses of a team account (its course only); None for a person."""
        team = self.team()
        return team["profiles"] if team else None

    def team_config_path(self, learner_path: str) -> str:
        """JUPYTER_CONFIG_PATH of this server: for a team's, the team config first, then the learner
        config (``learner_path``); they are siblings (jupyter-config/team and jupyter-config/learner)
        in the hub's environment and in every course image alike."""
        if not self.team() or not learner_path:
            return learner_path
        return os.pathsep.join([team_config_of(learner_path), learner_path])

    def run_pre_spawn_hook(self):
        team = self.team()
        if team is not None:
            self._become_team_server(team)
        return super().run_pre_spawn_hook()

    def _become_team_server(self, team: dict) -> None:
        folder = team["folder"]
        if not os.path.isdir(folder):
            raise TeamFolderMissing(
                f"Not started: the team folder {folder} of {self.user.name} does not exist yet. "
                "The course sync makes it; ask the site's administrators if it stays missing."
            )
        self.log.info("Starting %s as the team server of %s in %s", self.user.name, team["course"], folder)
        self.args = list(self.team_args)
        self.cmd = with_umask(self.cmd, self.team_umask)
        if hasattr(self, "container_cmd"):  # Slurm's server in the course image
            self.container_cmd = with_umask(self.container_cmd, self.team_umask)
        environment = dict(self.environment)
        environment["JUPYTER_CONFIG_PATH"] = self.team_config_path(environment.get("JUPYTER_CONFIG_PATH", ""))
        self.environment = environment
        self.notebook_dir = folder
