"""Each applier on an empty Config: what it sets, and nothing that another concern owns."""

import ast
import json
import sys
from pathlib import Path

from traitlets.config import Config

from hub_config.appliers import apply_all
from hub_config.appliers.access import apply_groups_and_roles, instructor_role, roles_of
from hub_config.appliers.auth import apply_auth
from hub_config.appliers.culler import apply_culler
from hub_config.appliers.network import apply_network
from hub_config.appliers.services import apply_managed_services, apply_services
from hub_config.appliers.spawner import apply_spawner, environment_server_extensions
from hub_config.appliers.storage import apply_storage
from hub_config.secrets import Secrets


def secrets(tmp: Path = Path("/s")) -> Secrets:
    return Secrets(tmp, proxy_token="p" * 64, sync_token="s" * 64, cli_token="c" * 64)


def test_network(catalogue):
    c = Config()
    apply_network(c, catalogue.site, secrets())
    assert c.JupyterHub.bind_url == "http://127.0.0.1:8000/"
    assert c.JupyterHub.hub_bind_url == "http://127.0.0.1:8081"
    assert c.ConfigurableHTTPProxy.should_start is False  # the proxy outlives hub restarts
    assert c.ConfigurableHTTPProxy.auth_token == "p" * 64
    assert c.JupyterHub.last_activity_interval == 30  # routes back within 30 s of a proxy restart
    assert set(c) == {"JupyterHub", "ConfigurableHTTPProxy"}


def test_storage_defaults_to_sqlite_in_the_data_folder(catalogue):
    c = Config()
    apply_storage(c, catalogue, secrets())
    assert c.JupyterHub.db_url == f"sqlite:///{catalogue.data_dir}/jupyterhub.sqlite"
    assert c.JupyterHub.cookie_secret_file == "/s/jupyterhub_cookie_secret"


def test_storage_takes_postgresql(write_catalogue):
    from hub_config.catalogue import load_catalogue

    from .conftest import SITE

    catalogue = load_catalogue(
        write_catalogue(site={**SITE, "database_url": "postgresql://hub@127.0.0.1/hub"})
    )
    c = Config()
    apply_storage(c, catalogue, secrets())
    assert c.JupyterHub.db_url == "postgresql://hub@127.0.0.1/hub"


def test_auth(catalogue):
    c = Config()
    apply_auth(c, catalogue, secrets())
    assert c.JupyterHub.authenticator_class == "hub_config.login.local.LocalLogin"
    assert c.Authenticator.admin_users == {"root-admin"}
    assert c.Authenticator.allowed_users == set(catalogue.people())
    assert c.Authenticator.manage_roles is True
    assert c.NativeAuthenticator.enable_signup is False
    assert c.NativeAuthenticator.minimum_password_length == 10
    assert "demo_logins_file" not in c.LocalLogin  # demo accounts are off unless asked


def test_spawner(catalogue):
    c = Config()
    apply_spawner(c, catalogue)
    assert c.JupyterHub.spawner_class == "spawners.local.LocalSpawner"
    assert c.LocalSpawner.home_root == str(catalogue.data_dir / "homes")
    assert c.LocalSpawner.courses_dir == str(catalogue.courses_dir)
    assert Path(c.Spawner.cmd[0]).is_absolute()  # learners' processes do not inherit the hub's PATH
    assert "from jupyterhub.singleuser import main" in c.Spawner.cmd[-1]
    extensions = ast.literal_eval(c.Spawner.args[0].split("=", 1)[1])  # the dict ServerApp receives
    assert extensions["jupyterlab"] and not extensions["nbgrader.server_extensions.formgrader"]
    page_config = Path(c.Spawner.environment["JUPYTER_CONFIG_PATH"]) / "labconfig" / "page_config.json"
    disabled = json.loads(page_config.read_text())["disabledExtensions"]
    # learners get nbgrader's Assignments panel, never its instructor tools
    assert disabled["@jupyter/nbgrader:formgrader"] and disabled["@jupyter/nbgrader:create-assignment"]
    assert "@jupyter/nbgrader:assignment-list" not in disabled and "@jupyter/nbgrader" not in disabled
    # the Assignments panel's server side, imported at its first request (grading/learner_extension.py)
    assert (
        extensions["grading.learner_extension"]
        and not extensions["nbgrader.server_extensions.assignment_list"]
    )
    assert c.JupyterHub.cleanup_servers is False  # servers survive a hub restart


def test_a_learner_server_loads_only_the_extensions_it_needs(catalogue, tmp_path, monkeypatch):
    # A package installed later enables its server extension in a config folder of the environment.
    (tmp_path / "jupyter_server_config.d").mkdir()
    (tmp_path / "jupyter_server_config.d" / "jupyter_ai.json").write_text(
        json.dumps({"ServerApp": {"jpserver_extensions": {"jupyter_ai": True}}})
    )
    monkeypatch.setenv("JUPYTER_CONFIG_PATH", str(tmp_path))
    c = Config()
    apply_spawner(c, catalogue)
    extensions = ast.literal_eval(c.Spawner.args[0].split("=", 1)[1])
    assert {name for name, on in extensions.items() if on} == {
        "jupyterlab",
        "jupyter_server_terminals",
        "grading.learner_extension",
    }
    # every server extension this environment enables is named, so ServerApp adds none of its own
    assert {"jupyter_ai", "voila.server_extension", "jupyter_server_ydoc"} <= extensions.keys()
    assert environment_server_extensions() <= extensions.keys()


def test_groups_and_roles(catalogue):
    c = Config()
    apply_groups_and_roles(c, catalogue)
    groups = c.JupyterHub.load_groups
    assert groups["course-algo"]["users"] == ["ana", "ben"]
    assert groups["staff-algo"]["users"] == ["prof"]
    assert groups["course-stats"]["users"] == ["cleo"]
    assert set(c) == {"JupyterHub"} and set(c.JupyterHub) == {"load_groups"}


def test_instructor_role_is_limited_to_the_course_group(catalogue):
    role = instructor_role(catalogue.course("algo"), catalogue.learners(catalogue.course("algo")))
    assert role["name"] == "instructor-algo"
    per_learner = {"access:servers!user=ana", "access:servers!user=ben"}  # what learners' servers check
    assert per_learner <= set(role["scopes"])
    for scope in set(role["scopes"]) - per_learner:
        assert scope == "admin-ui" or scope.endswith("!group=course-algo"), scope
    assert "access:servers!group=course-algo" in role["scopes"]
    assert [r["name"] for r in roles_of("prof", catalogue)] == ["instructor-algo"]
    assert roles_of("ana", catalogue) == []


def test_services_and_culler(catalogue):
    c = Config()
    apply_services(c, catalogue, secrets())
    apply_culler(c, catalogue.site)
    services = {s["name"]: s for s in c.JupyterHub.services}
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert set(services) == {"course-sync", "ailys-cli", "idle-culler"}
    assert "--timeout=3600" in services["idle-culler"]["command"]
    assert roles["idle-culler"]["scopes"] == [
        "list:users",
        "read:users:activity",
        "read:servers",
        "delete:servers",
    ]
    # the narrowest that works: groups and memberships, users created and listed; a closed trainee's
    # servers stopped and tokens revoked
    assert roles["course-sync"]["scopes"] == [
        "admin:groups",
        "admin:users",
        "list:users",
        "read:servers",
        "delete:servers",
        "tokens",
    ]
    assert roles["ailys-cli"]["scopes"] == ["shutdown"]
    assert all(not r.get("users") and not r.get("groups") for r in roles.values())  # manage_roles forbids it


def test_culler_off(write_catalogue):
    from hub_config.catalogue import load_catalogue

    from .conftest import SITE

    catalogue = load_catalogue(write_catalogue(site={**SITE, "culler": {"enabled": False}}))
    c = Config()
    apply_culler(c, catalogue.site)
    assert c == Config()


def test_apply_all_sets_every_concern(catalogue):
    c = apply_all(Config(), catalogue, secrets())
    assert {
        "JupyterHub",
        "Authenticator",
        "NativeAuthenticator",
        "CatalogueRules",
        "LocalSpawner",
        "Spawner",
        "ConfigurableHTTPProxy",
    } <= set(c)


def test_services_the_hub_runs_end_with_it_and_get_the_sites_start_timeout(write_catalogue):
    from hub_config.catalogue import load_catalogue

    from .conftest import SITE

    catalogue = load_catalogue(write_catalogue(site={**SITE, "services_start_timeout": "3m"}))
    c = Config()
    c.JupyterHub.services = [
        {"name": "runs-and-listens", "command": ["x", "--a"], "url": "http://127.0.0.1:9"},
        {"name": "runs-only", "command": ["y"]},  # the hub does not wait for it
        {"name": "external", "url": "http://127.0.0.1:8"},  # not the hub's to start
    ]
    apply_managed_services(c, catalogue)
    services = {s["name"]: s for s in c.JupyterHub.services}
    assert {name: s.get("timeout") for name, s in services.items()} == {
        "runs-and-listens": 180,
        "runs-only": None,
        "external": None,
    }
    wrapper = [sys.executable, "-m", "hub_config.child_of_hub"]
    assert services["runs-and-listens"]["command"] == [*wrapper, "x", "--a"]
    assert services["runs-only"]["command"] == [*wrapper, "y"]
    assert "command" not in services["external"]
