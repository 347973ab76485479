"""The batch script (spawners/slurm/batch.py), the launcher it runs (spawners/slurm/launcher.py) and
the hub's handler of the launcher's port report (spawners/slurm/port_report.py)."""

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest
from jupyterhub import apihandlers
from traitlets.config import Config

import hub_config
from spawners.launch_form import TEMPLATES
from spawners.slurm import PortReportHandler, install_port_handler, port_report
from spawners.slurm.batch import LAUNCHER, TEAM_LINKS, launcher_source, render_batch_script
from spawners.slurm.errors import SlurmSpawnError
from spawners.slurm.request import Launch
from spawners.team_links import LINKS_VARIABLE, link_from_environment, links_value

from .conftest import SITE, course
from .test_slurm_site import SLURM_SITE

LAUNCH = Launch(
    course="algo",
    title="Algorithmique",
    partition="cpu",
    account=None,
    qos="short",
    reservation=None,
    cpus=2,
    memory=1536 * 1024**2,
    gpus=0,
    walltime=90 * 60 + 1,
)


def script(**over):
    kwargs = {
        "home": "/home/ana",
        "output": "/home/ana/.log-%j",
        "job_name": "ailys-algo",
        "comment": "ailys-hub:course=algo",
        "environment": {"JUPYTERHUB_API_TOKEN": "s3cret it's", "HOME": "/home/ana"},
        "python": "/venv/bin/python",
        "command": ["/venv/bin/python", "-c", "print(1)"],
    }
    return render_batch_script(TEMPLATES / "slurm-job.sh.j2", LAUNCH, **{**kwargs, **over})


def test_the_script_asks_slurm_for_the_launch_and_runs_the_launcher():
    text = script()
    for line in (
        "#SBATCH --partition=cpu",
        "#SBATCH --qos=short",
        "#SBATCH --cpus-per-task=2",
        "#SBATCH --mem=1536M",
        "#SBATCH --time=0-01:31:00",
        "#SBATCH --export=NONE",
        "export JUPYTERHUB_API_TOKEN='s3cret it'\"'\"'s'",
    ):
        assert line + "\n" in text
    assert "--account" not in text and "--gres" not in text
    # the launcher's own source, so the node needs nothing of the hub's tree, then the server's argv
    launcher = launcher_source().replace("'", "'\"'\"'")
    assert text.endswith(f"exec /venv/bin/python -c '{launcher}' /venv/bin/python -c 'print(1)'\n")
    result = subprocess.run(["bash", "-n"], input=text, text=True, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "over, words",
    [
        ({"home": "/home/a b"}, "has spaces"),
        ({"job_name": "x --uid=0"}, "bad job name"),
        ({"environment": {"A-B": "1"}}, "bad environment variable name"),
    ],
)
def test_a_value_that_could_change_the_script_is_refused(over, words):
    with pytest.raises(SlurmSpawnError, match=words):
        script(**over)


@pytest.mark.parametrize("source", [LAUNCHER, TEAM_LINKS], ids=["launcher", "team-links"])
def test_the_launcher_uses_the_standard_library_only(source):
    tree = ast.parse(source.read_text())
    assert not any(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in ast.walk(tree))
    modules = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    modules |= {n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert modules <= sys.stdlib_module_names, modules - sys.stdlib_module_names


def test_importing_the_package_installs_nothing_and_the_call_installs_once():
    assert all(h[1] is not PortReportHandler for h in apihandlers.default_handlers)  # the import did not
    handlers = [(r"/api/users", object)]
    install_port_handler(handlers)
    install_port_handler(handlers)
    assert handlers == [(r"/api/users", object), (r"/api/batchspawner", PortReportHandler)]
    stock = [(r"/api/batchspawner", object)]  # batchspawner's, which sets any attribute posted
    install_port_handler(stock)
    assert stock == [(r"/api/batchspawner", PortReportHandler)]


@pytest.mark.parametrize("kind", ["slurm", "local"])
def test_the_hub_configuration_installs_the_port_handler_for_a_slurm_site_only(
    write_catalogue, monkeypatch, kind
):
    site = SLURM_SITE if kind == "slurm" else SITE
    site_file = write_catalogue(site=site, courses={"algo": course()})
    (site_file.parent / "data").mkdir()
    handlers = [(r"/api/users", object)]
    monkeypatch.setattr(port_report, "default_handlers", handlers)
    monkeypatch.setenv("AILYS_SITE", str(site_file))
    config = Path(hub_config.__file__).parent / "jupyterhub_config.py"
    namespace = {"get_config": Config, "__file__": str(config)}
    exec(compile(config.read_text(), config, "exec"), namespace)  # noqa: S102 (as JupyterHub loads it)
    assert (handlers[-1] == (r"/api/batchspawner", PortReportHandler)) == (kind == "slurm")


def test_a_job_makes_its_team_links_and_drops_those_of_teams_left(tmp_path, capsys):
    """What spawners/team_links.py does in a person's job, as them (the batch script runs it before
    the launcher): the links the spawner gave, none of a team left, a folder of theirs kept."""
    home, teams = tmp_path / "home", tmp_path / "teams"
    home.mkdir()
    (home / "team-old").symlink_to(teams / "team-c-old")  # a team they left
    (home / "team-mine").mkdir()  # their own folder of a team's link name
    (home / "team-elsewhere").symlink_to("/etc")  # their own link, not into the teams folder
    given = {"team-red": str(teams / "team-c-red"), "team-mine": str(teams / "team-c-mine")}
    link_from_environment({"HOME": str(home), LINKS_VARIABLE: links_value(str(teams), given)})
    assert os.readlink(home / "team-red") == str(teams / "team-c-red")
    assert not os.path.lexists(home / "team-old")
    assert (home / "team-mine").is_dir() and not (home / "team-mine").is_symlink()
    assert os.readlink(home / "team-elsewhere") == "/etc"
    link_from_environment({"HOME": str(home), LINKS_VARIABLE: "{not json"})
    assert "ailys-hub: team links not made in" in capsys.readouterr().err
    assert os.path.islink(home / "team-red")  # a bad value changes nothing
