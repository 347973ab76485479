"""The exchange applier on an empty Config, and the schema keys it reads."""

import sys

import pytest
from traitlets.config import Config

from hub_config.appliers import apply_all
from hub_config.appliers.exchange import ACCESS, SERVICE_SCOPES, apply_exchange
from hub_config.catalogue import CatalogueError, load_catalogue
from hub_config.secrets import Secrets

from .conftest import SITE, course


def test_the_service_its_role_and_the_scopes_that_reach_it(catalogue):
    c = Config()
    apply_exchange(c, catalogue)
    [service] = c.JupyterHub.services
    assert service["name"] == "exchange" and service["url"] == "http://127.0.0.1:8082"
    assert service["command"] == [sys.executable, "-m", "grading.exchange.service", str(catalogue.site_file)]
    assert "api_token" not in service  # a managed service: the hub makes its token
    [role] = c.JupyterHub.load_roles
    assert role == {**role, "scopes": SERVICE_SCOPES, "services": ["exchange"]}
    assert set(SERVICE_SCOPES) == {"read:users:name", "read:users:groups"}  # no admin, no server access
    assert c.JupyterHub.extra_user_scopes == {"access:services!service=exchange"}
    # the `server` role's two scopes, plus the exchange: nothing broader
    assert c.Spawner.server_token_scopes == ["users:activity!user", "access:servers!server", ACCESS]
    assert c.Spawner.environment == {"AILYS_EXCHANGE_URL": "http://127.0.0.1:8082/services/exchange/"}
    assert set(c) == {"JupyterHub", "Spawner"}


def test_apply_all_keeps_the_spawners_environment_and_adds_the_exchange_url(catalogue):
    c = apply_all(Config(), catalogue, Secrets(catalogue.data_dir, "p" * 64, "s" * 64, "c" * 64))
    env = c.Spawner.environment
    assert "JUPYTER_CONFIG_PATH" in env and env["AILYS_EXCHANGE_URL"].endswith("/services/exchange/")
    assert "exchange" in [s["name"] for s in c.JupyterHub.services]


def test_site_settings_and_base_url(write_catalogue):
    site = {**SITE, "listen": {"base_url": "/hub-a/"}, "exchange": {"ip": "10.1.0.5", "port": 9100}}
    c = Config()
    apply_exchange(c, load_catalogue(write_catalogue(site=site)))
    assert c.JupyterHub.services[0]["url"] == "http://10.1.0.5:9100"
    assert c.Spawner.environment["AILYS_EXCHANGE_URL"] == "http://10.1.0.5:9100/hub-a/services/exchange/"


def test_a_port_taken_by_the_proxy_is_refused(write_catalogue):
    with pytest.raises(CatalogueError, match="exchange: .*port 8000 is already used by listen.port"):
        load_catalogue(write_catalogue(site={**SITE, "exchange": {"port": 8000}}))


def test_course_submission_limits_have_defaults_and_units(write_catalogue):
    cat = load_catalogue(
        write_catalogue(courses={"algo": course(submission={"max_file_size": "1M", "max_total_size": "3M"})})
    )
    sub = cat.course("algo").submission
    assert (sub.max_file_size, sub.max_total_size, sub.max_files) == (1024**2, 3 * 1024**2, 100)


def test_a_misspelt_submission_key_names_file_and_key(write_catalogue):
    with pytest.raises(CatalogueError, match=r"algo/course.yaml: submission.max_size: unknown key"):
        load_catalogue(write_catalogue(courses={"algo": course(submission={"max_size": "1M"})}))
