"""The team server: its role reaches one account for its team and mentors only; its spawn settings
(collaboration, team folder, umask, the team's course) apply to team accounts and nobody else."""

import ast
import datetime as dt
import json
import logging
import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from traitlets.config import Config, Configurable

from hub_config.appliers import teams as team_appliers
from hub_config.appliers.access import roles_of
from hub_config.appliers.spawner import LEARNER_JUPYTER_CONFIG, apply_spawner
from hub_config.catalogue import load_catalogue
from hub_config.team_servers import TeamServers, team_server
from spawners.team_server import TeamServer, team_config_of, with_umask

from .conftest import course
from .test_i18n_pages import hub_env, namespace  # noqa: F401 (hub_env: the hub's Jinja environment)

LEARNERS = ["ana", "ben", "cleo", "dan", "eve", "fay", "gus", "hal", "ivy"]
TEAMS = [
    {"name": "vision", "members": ["ana", "ben", "cleo", "dan"], "mentors": ["prof"]},
    {"name": "nlp", "members": ["eve", "fay", "gus", "hal"], "mentors": ["mentor1"]},
]


@pytest.fixture
def project(write_catalogue):
    return load_catalogue(
        write_catalogue(
            courses={
                "algo": course(kind="project-team", learners=LEARNERS, mentors=["mentor1"], teams=TEAMS),
                "stats": course("stats", instructors=["prof2"], learners=["ivy", "ana"]),
            }
        )
    )


def scopes_of(username, catalogue):
    return {s for role in roles_of(username, catalogue) for s in role["scopes"]}


def test_members_and_mentors_reach_their_team_server_only(project):
    vision = {"access:servers!user=team-algo-vision", "servers!user=team-algo-vision"}
    for person in ["ana", "dan", "prof"]:  # members, and the mentor (here the instructor too)
        assert vision <= scopes_of(person, project), person
        assert not any("team-algo-nlp" in s for s in scopes_of(person, project)), person
    assert {"access:servers!user=team-algo-nlp", "servers!user=team-algo-nlp"} == scopes_of(
        "mentor1", project
    )
    # a learner of the course outside every team, and another course's instructor: nothing
    assert not any("team-" in s for s in scopes_of("ivy", project) | scopes_of("prof2", project))
    role = next(r for r in roles_of("ana", project) if r["name"] == "team-server-algo-vision")
    assert sorted(role["scopes"]) == sorted(vision)  # no admin-ui, no list:users, no other account


def test_managed_roles_go_to_the_team_and_mentor_groups(project):
    roles = {r["name"]: r for r in team_appliers.managed_team_roles(project)}
    assert roles.keys() == {"team-server-algo-vision", "team-server-algo-nlp"}
    assert roles["team-server-algo-vision"]["groups"] == ["team-algo-vision", "mentors-algo-vision"]
    assert "users" not in roles["team-server-algo-vision"]  # per person: at login (roles_of)


def test_team_servers_applier_on_an_empty_config(project):
    c = Config()
    team_appliers.apply_team_servers(c, project)
    assert isinstance(c.TeamServer.team_servers, TeamServers)
    team_ext = ast.literal_eval(c.TeamServer.team_args[0].split("=", 1)[1])
    assert team_ext["jupyter_server_ydoc"] and team_ext["jupyter_server_fileid"] and team_ext["jupyterlab"]
    assert not team_ext["nbgrader.server_extensions.assignment_list"]  # the team account is no learner
    assert not team_ext["grading.learner_extension"]  # nor nbgrader's learner side at a first request
    apply_spawner(c, project)
    learner_ext = ast.literal_eval(c.Spawner.args[0].split("=", 1)[1])
    assert learner_ext["jupyter_server_ydoc"] is False and learner_ext["jupyter_server_fileid"] is False


def test_learner_config_hides_collaboration_and_the_team_config_brings_it_back():
    learner = json.loads((LEARNER_JUPYTER_CONFIG / "labconfig" / "page_config.json").read_text())
    team = json.loads(
        (Path(team_config_of(str(LEARNER_JUPYTER_CONFIG))) / "labconfig" / "page_config.json").read_text()
    )
    for plugin in ["@jupyter/collaboration-extension", "@jupyter/docprovider-extension"]:
        assert learner["disabledExtensions"][plugin] is True
        assert team["disabledExtensions"][plugin] is False
    assert team["disabledExtensions"]["@jupyter/nbgrader"] is True


def test_a_team_account_gets_its_folder_and_its_course_only(project):
    today = dt.date(2026, 10, 1)
    server = team_server(project, "team-algo-vision", None, today)
    assert server["folder"] == str(project.data_dir / "teams" / "team-algo-vision")
    assert server["course"] == "algo" and server["group"] == "team-algo-vision"
    assert list(server["profiles"]) == ["algo"]  # not stats, whatever the members take
    assert team_server(project, "ana", None, today) is None  # a person's account
    assert team_server(project, "team-algo-nope", None, today) is None


def test_with_umask_runs_in_the_server_process():
    cmd = ["/usr/bin/python3", "-c", "print(1)"]
    once = with_umask(cmd, 0o002)
    assert once == ["/usr/bin/python3", "-c", "import os; os.umask(0o002); print(1)"]
    assert with_umask(once, 0o002) == once  # a second start adds nothing
    with pytest.raises(ValueError, match="python -c CODE"):
        with_umask(["jupyterhub-singleuser"], 0o002)


class _User:
    def __init__(self, name):
        self.name = name


class _Hooked(Configurable):
    def run_pre_spawn_hook(self):  # Spawner's: the site's pre_spawn_hook, none here
        return None


class _Spawner(TeamServer, _Hooked):
    """What TeamServer needs of a spawner, without one (the hub tests start real ones)."""

    def __init__(self, name, **kw):
        super().__init__(**kw)
        self.user = _User(name)
        self.log = logging.getLogger("test")
        self.cmd, self.args, self.environment, self.notebook_dir = ["/py", "-c", "main()"], [], {}, ""


def test_pre_spawn_makes_a_team_server_and_leaves_a_learner_alone(project):
    c = Config()
    team_appliers.apply_team_servers(c, project)
    folder = project.data_dir / "teams" / "team-algo-vision"
    learner_path = "/env/share/ailys-hub/jupyter-config/learner"
    spawner = _Spawner("team-algo-vision", config=c)
    spawner.environment = {"JUPYTER_CONFIG_PATH": learner_path}
    with pytest.raises(Exception, match="team folder .* does not exist"):
        spawner.run_pre_spawn_hook()
    folder.mkdir(parents=True)
    spawner.run_pre_spawn_hook()
    assert spawner.notebook_dir == str(folder)
    assert spawner.cmd[2].startswith("import os; os.umask(0o002); ")
    assert spawner.args == c.TeamServer.team_args
    assert spawner.environment["JUPYTER_CONFIG_PATH"] == os.pathsep.join(
        ["/env/share/ailys-hub/jupyter-config/team", learner_path]
    )
    learner = _Spawner("ana", config=c)
    learner.run_pre_spawn_hook()
    assert learner.notebook_dir == "" and learner.cmd == ["/py", "-c", "main()"] and learner.args == []
    assert learner.team_config_path(learner_path) == learner_path


def test_home_page_links_members_and_mentors_to_their_team_servers(hub_env):  # noqa: F811
    groups = [
        SimpleNamespace(name="course-algo", properties={"course": "algo", "kind": "learners"}),
        SimpleNamespace(
            name="team-algo-vision", properties={"course": "algo", "team": "vision", "kind": "team"}
        ),
        SimpleNamespace(
            name="mentors-algo-nlp", properties={"course": "algo", "team": "nlp", "kind": "mentors"}
        ),
    ]
    extra = {"default_server": SimpleNamespace(active=False), "url": "/hub/spawn"}
    page = namespace("fr", **extra)
    page["user"].groups = groups
    fr = hub_env.get_template("home.html").render(**page)
    assert 'href="/hub/spawn/team-algo-vision"' in fr and 'href="/hub/spawn/team-algo-nlp"' in fr
    assert "Équipe vision de algo : serveur partagé" in fr and "Serveurs d'équipe" in fr
    page = namespace("en", **extra)
    page["user"].groups = groups[:1]  # a learner in no team: no team section
    assert "team-servers" not in hub_env.get_template("home.html").render(**page)
