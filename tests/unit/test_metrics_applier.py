"""The metrics applier on an empty Config: Prometheus's token holds the two metrics scopes and
nothing else, our custom scope is declared, the spawn hook is set; and the hook's pure parts."""

from pathlib import Path

from traitlets.config import Config

from hub_config.appliers.metrics import PROMETHEUS_SCOPES, apply_metrics
from hub_config.metrics import METRICS_SCOPE, SpawnHook, spawner_kind
from hub_config.secrets import Secrets


def secrets(prometheus: str = "m" * 64) -> Secrets:
    return Secrets(Path("/s"), "p" * 64, "s" * 64, "c" * 64, prometheus_token=prometheus)


def test_prometheus_token_reads_metrics_and_nothing_else(catalogue):
    c = Config()
    apply_metrics(c, catalogue, secrets())
    assert c.JupyterHub.services == [{"name": "prometheus", "api_token": "m" * 64}]
    [role] = c.JupyterHub.load_roles
    assert role["scopes"] == PROMETHEUS_SCOPES == ["read:metrics", METRICS_SCOPE]
    assert role["services"] == ["prometheus"]
    assert set(c.JupyterHub.custom_scopes) == {METRICS_SCOPE} and METRICS_SCOPE.startswith("custom:")
    assert c.JupyterHub.authenticate_prometheus is True
    hook = c.Spawner.pre_spawn_hook
    assert isinstance(hook, SpawnHook) and hook.database_url.startswith("sqlite:///")
    assert "sqlite" not in repr(hook)  # `ailys render` never shows the database URL through it
    assert set(c) == {"JupyterHub", "Spawner"}


def test_without_a_prometheus_token_no_service_is_declared(catalogue):
    c = Config()
    apply_metrics(c, catalogue, secrets(prometheus=""))
    assert "services" not in c.JupyterHub and "load_roles" not in c.JupyterHub
    assert METRICS_SCOPE in c.JupyterHub.custom_scopes


def test_spawner_kind_comes_from_the_class():
    from batchspawner import SlurmSpawner
    from dockerspawner import DockerSpawner
    from jupyterhub.spawner import LocalProcessSpawner

    kinds = [spawner_kind(cls.__new__(cls)) for cls in (SlurmSpawner, DockerSpawner, LocalProcessSpawner)]
    assert kinds == ["slurm", "docker", "local"]
