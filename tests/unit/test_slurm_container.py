"""Slurm sessions inside the course image (spawners/slurm/container.py): the batch script's ch-run
line, the binds of the learner's home, the image looked up in the image store, and the site
settings that turn it on."""

import datetime as dt
import shlex
import subprocess
from pathlib import Path

import pytest
from traitlets.config import Config

import images
from hub_config.appliers.spawner import IMAGE_PYTHON as applier_image_python
from hub_config.appliers.spawner import LEARNER_JUPYTER_CONFIG, SINGLEUSER_MAIN, apply_spawner
from hub_config.catalogue import CatalogueError, load_catalogue
from hub_config.profiles import course_profile
from images.store import BuiltImage, ImageStore
from spawners.launch_form import TEMPLATES
from spawners.slurm.batch import render_batch_script
from spawners.slurm.container import (
    IMAGE_JUPYTER_CONFIG,
    IMAGE_PREFIX,
    IMAGE_PYTHON,
    IMAGE_SINGLEUSER,
    charliecloud,
    current_image,
)
from spawners.slurm.errors import SlurmSpawnError
from spawners.slurm.request import check_profiles, resolve

from .conftest import course
from .test_slurm_batch import LAUNCH
from .test_slurm_site import SLURM_SITE

SQFS = "/srv/images/hpc/python-ml-0123456789ab.sqfs"
TOKEN = "s3cret-token"


def script(home: str, **over) -> str:
    kwargs = {
        "home": home,
        "output": f"{home}/.log-%j",
        "job_name": "ailys-algo",
        "comment": "ailys-hub:course=algo",
        "environment": {
            "JUPYTERHUB_API_TOKEN": TOKEN,
            "HOME": home,
            "JUPYTER_CONFIG_PATH": IMAGE_JUPYTER_CONFIG,
        },
        "python": IMAGE_PYTHON,
        "command": [IMAGE_SINGLEUSER, "--ServerApp.jpserver_extensions={'jupyterlab': True}"],
        "container": charliecloud("/usr/bin/ch-run", SQFS, home),
    }
    return render_batch_script(TEMPLATES / "slurm-job.sh.j2", LAUNCH, **{**kwargs, **over})


def ch_run_line(text: str) -> list[str]:
    """The script's last command (it spans lines: the launcher's source), as the shell splits it."""
    return shlex.split(text[text.index("\nexec ") + 1 :])


def test_the_server_runs_in_the_image_with_a_home_under_home_bound_at_its_own_path():
    text = script("/home/ana")
    argv = ch_run_line(text)
    launcher_at = argv.index("-c")
    assert argv[:launcher_at] == [
        "exec",
        "/usr/bin/ch-run",
        "--home",  # a tmpfs over the image's /home, where the home's mount point can be made
        "--set-env=HOME=/home/ana",  # --home sets HOME=/home/$USER: set back to the real one
        "--bind=/home/ana:/home/ana",
        "--cd=/home/ana",
        SQFS,
        "--",
        "/opt/ailys-env/bin/python3",
    ]
    # then the launcher's source, and the image's server
    assert argv[launcher_at + 2 :] == [
        "/opt/ailys-env/bin/jupyterhub-singleuser",
        "--ServerApp.jpserver_extensions={'jupyterlab': True}",
    ]
    assert "def report_port" in argv[launcher_at + 1]
    # the job's environment is exported before ch-run, which passes it through: no secret on its line
    assert f"export JUPYTERHUB_API_TOKEN={TOKEN}\n" in text
    assert TOKEN not in " ".join(argv)
    assert f"export JUPYTER_CONFIG_PATH={IMAGE_JUPYTER_CONFIG}\n" in text
    result = subprocess.run(["bash", "-n"], input=text, text=True, capture_output=True, check=False)
    assert result.returncode == 0, result.stderr


def test_a_home_under_tmp_is_already_in_the_container():
    """ch-run shares the host's /tmp: the test clusters' homes need no tmpfs."""
    argv = ch_run_line(script("/tmp/ailys-slurm-x/home/ana"))
    assert "--home" not in argv and not any(a.startswith("--set-env") for a in argv)
    assert "--bind=/tmp/ailys-slurm-x/home/ana:/tmp/ailys-slurm-x/home/ana" in argv
    assert argv[argv.index(SQFS) - 1] == "--cd=/tmp/ailys-slurm-x/home/ana"


def test_without_a_container_the_script_is_as_before():
    text = script("/home/ana", container=None, python="/venv/bin/python", command=["/venv/bin/x"])
    assert "--bind" not in text and ch_run_line(text)[:2] == ["exec", "/venv/bin/python"]
    assert text.endswith(" /venv/bin/x\n") and not text.endswith("\n\n")


@pytest.mark.parametrize(
    "ch_run, image, home, words",
    [
        ("/usr/bin/ch-run", SQFS, "/srv/people/ana", "neither under /home nor under /tmp"),
        ("/usr/bin/ch-run", SQFS, "/home", "neither under /home"),
        ("/usr/bin/ch-run", SQFS, "/home/a:b", "cannot be given to ch-run"),  # --bind splits at ':'
        ("/usr/bin/ch-run", SQFS, "/home/$USER", "cannot be given to ch-run"),  # --set-env expands $
        ("/usr/bin/ch-run", SQFS, "/home/../etc", "cannot be given to ch-run"),
        ("ch-run", SQFS, "/home/ana", "the ch-run path 'ch-run'"),
        ("/usr/bin/ch-run", "images/x.sqfs", "/home/ana", "the image path"),
    ],
)
def test_what_ch_run_cannot_take_is_refused_before_submitting(ch_run, image, home, words):
    with pytest.raises(SlurmSpawnError, match=words) as refused:
        charliecloud(ch_run, image, home)
    assert refused.value.reason == "config" and refused.value.status_code == 500


def test_the_image_paths_are_those_of_the_image_contract():
    assert IMAGE_PREFIX == images.IMAGE_PREFIX
    assert applier_image_python == IMAGE_PYTHON == str(images.IMAGE_PREFIX / "bin" / "python3")
    # the learner config sits in the image where it sits in the hub's environment
    hub_prefix = Path(LEARNER_JUPYTER_CONFIG).parents[3]
    assert Path(IMAGE_JUPYTER_CONFIG).relative_to(IMAGE_PREFIX) == LEARNER_JUPYTER_CONFIG.relative_to(
        hub_prefix
    )


def test_a_course_whose_image_is_not_built_is_refused_naming_the_build_command(tmp_path):
    with pytest.raises(SlurmSpawnError) as refused:
        current_image(tmp_path, "python-ml", "algo")
    message = refused.value.jupyterhub_message
    assert message == (
        "Not started: the environment python-ml of course algo has no HPC image yet. "
        "An administrator builds it with `ailys image build python-ml`."
    )
    assert refused.value.reason == "no-image"
    with pytest.raises(SlurmSpawnError, match="names no environment"):
        current_image(tmp_path, None, "algo")


def test_the_current_image_of_the_environment_is_the_one_run(tmp_path):
    store = ImageStore(tmp_path)
    squashfs = store.squashfs_path("python-ml", "0123456789ab")
    built = BuiltImage(
        env="python-ml",
        tag="localhost/ailys-python-ml:0123456789ab",
        squashfs=squashfs,
        size_bytes=1,
        built=dt.datetime(2026, 11, 2, 10, 0),
    )
    store.record(built)
    store.make_current(built)
    with pytest.raises(SlurmSpawnError, match="no HPC image yet"):  # indexed, but its file is gone
        current_image(tmp_path, "python-ml", "algo")
    squashfs.parent.mkdir(parents=True)
    squashfs.write_bytes(b"hsqs")
    assert current_image(tmp_path, "python-ml", "algo") == squashfs


def test_the_course_environment_reaches_the_launch(write_catalogue):
    site = load_catalogue(write_catalogue(courses={"algo": course(environment="python-ml")}))
    profiles = check_profiles({"algo": course_profile(site.course("algo"), "cpu")})
    assert resolve({}, profiles).environment == "python-ml"


def test_the_site_turns_containers_on_with_its_store_and_ch_run(write_catalogue):
    slurm = {**SLURM_SITE["spawner"]["slurm"], "container": "charliecloud", "image_store": "shared/images"}
    site = {**SLURM_SITE, "spawner": {**SLURM_SITE["spawner"], "slurm": slurm}}
    catalogue = load_catalogue(write_catalogue(site=site, courses={"algo": course()}))
    c = Config()
    apply_spawner(c, catalogue)
    assert c.SlurmSpawner.container == "charliecloud"
    assert c.SlurmSpawner.image_store == str(catalogue.site_file.parent / "shared" / "images")
    assert c.SlurmSpawner.ch_run == "/usr/bin/ch-run"
    # the hub's own server command, run by the image's Python
    assert c.SlurmSpawner.container_cmd == [IMAGE_PYTHON, "-c", SINGLEUSER_MAIN]
    assert c.Spawner.cmd[1:] == ["-c", SINGLEUSER_MAIN]


def test_a_slurm_site_runs_no_container_unless_it_says_so(write_catalogue):
    c = Config()
    apply_spawner(c, load_catalogue(write_catalogue(site=SLURM_SITE, courses={"algo": course()})))
    assert c.SlurmSpawner.container == "none" and "image_store" not in c.SlurmSpawner


@pytest.mark.parametrize(
    "slurm, words", [({"container": "apptainer"}, "container"), ({"ch_run": "ch-run"}, "absolute path")]
)
def test_a_container_setting_ch_run_cannot_take_is_refused(write_catalogue, slurm, words):
    site = {
        **SLURM_SITE,
        "spawner": {**SLURM_SITE["spawner"], "slurm": {**SLURM_SITE["spawner"]["slurm"], **slurm}},
    }
    with pytest.raises(CatalogueError, match=words):
        load_catalogue(write_catalogue(site=site, courses={"algo": course()}))
