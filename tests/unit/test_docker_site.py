"""The docker site kind: its applier on an empty Config, the containers made from a course
profile (limits, identity, security), the environment a server gets, and why a container ended."""

import pwd
from pathlib import Path

from traitlets.config import Config

import images
from hub_config import i18n
from hub_config.appliers.docker import IMAGE_JUPYTER_CONFIG, IMAGE_PREFIX, apply_docker
from hub_config.appliers.spawner import SINGLEUSER_MAIN, apply_spawner
from hub_config.catalogue import load_catalogue
from hub_config.profiles import course_profile
from spawners.docker.container import plan_container, server_env
from spawners.docker.launcher import EXIT_OUT_OF_MEMORY
from spawners.docker.spawner import FORM_FIELDS, TEMPLATES, ContainerSpawner
from spawners.docker.words import end_of_container, gone
from spawners.launch_form import LaunchForm
from spawners.slurm.request import resolve

from .conftest import SITE, course

GiB = 1024**3
DOCKER_SITE = {**SITE, "spawner": {"kind": "docker", "docker": {"pids_limit": 512, "tmp_size": "64M"}}}
COURSES = {"algo": course(resources={"cpus": 2, "memory": "3G"}, environment="python-ml")}


def docker_catalogue(write_catalogue, site=DOCKER_SITE):
    return load_catalogue(write_catalogue(site=site, courses=COURSES))


def test_the_docker_applier_on_an_empty_config(write_catalogue):
    catalogue = docker_catalogue(write_catalogue)
    c = Config()
    apply_docker(c, catalogue)
    assert c.JupyterHub.spawner_class == "spawners.docker.ContainerSpawner"
    # the image's Python and learner config, not the hub's sys.prefix
    assert c.Spawner.cmd == ["/opt/ailys-env/bin/python3", "-c", SINGLEUSER_MAIN]
    assert c.Spawner.environment == {
        "JUPYTER_CONFIG_PATH": "/opt/ailys-env/share/ailys-hub/jupyter-config/learner"
    }
    data = catalogue.data_dir
    assert c.ContainerSpawner.client_kwargs == {"base_url": f"unix://{data}/podman/podman.sock"}
    assert "image_store" not in c.ContainerSpawner  # the store's default
    assert c.ContainerSpawner.network_name == "host"
    assert c.ContainerSpawner.home_root == str(data / "homes")  # the local site's homes
    assert c.ContainerSpawner.courses_dir == str(catalogue.courses_dir)
    assert (c.ContainerSpawner.pids_limit, c.ContainerSpawner.tmp_size) == (512, 64 * 2**20)
    assert c.ContainerSpawner.min_uid == 1000
    profiles = c.ContainerSpawner.profiles(["course-algo"])
    assert profiles["algo"]["environment"] == "python-ml" and profiles["algo"]["cpus"] == 2


def test_the_spawner_applier_wires_the_docker_kind_and_keeps_the_exchange(write_catalogue):
    from hub_config.appliers.exchange import apply_exchange

    catalogue = docker_catalogue(write_catalogue)
    c = Config()
    apply_spawner(c, catalogue)
    apply_exchange(c, catalogue)
    assert c.JupyterHub.spawner_class == "spawners.docker.ContainerSpawner"
    assert c.Spawner.start_timeout == 300
    assert set(c.Spawner.environment) == {"JUPYTER_CONFIG_PATH", "AILYS_EXCHANGE_URL"}
    assert c.Spawner.environment["AILYS_EXCHANGE_URL"].startswith("http://127.0.0.1:")
    assert "LocalSpawner" not in c and "SlurmSpawner" not in c
    spawner = ContainerSpawner(config=c)  # the traits the spawner reads
    assert (spawner.network_name, spawner.ip, spawner.remove, spawner.pull_policy) == (
        "host",
        "127.0.0.1",
        True,
        "never",
    )
    assert spawner.use_internal_ip  # no port published: the server is on the host's network


def test_an_image_store_relative_to_the_site_file(write_catalogue):
    site = {
        **SITE,
        "spawner": {"kind": "docker", "docker": {"image_store": "store", "socket": "/run/p.sock"}},
    }
    catalogue = docker_catalogue(write_catalogue, site)
    c = Config()
    apply_docker(c, catalogue)
    assert c.ContainerSpawner.image_store == str(catalogue.site_file.parent / "store")
    assert c.ContainerSpawner.client_kwargs == {"base_url": "unix:///run/p.sock"}


def test_constants_written_out_in_hub_config_agree_with_images():
    assert Path(IMAGE_PREFIX) == images.IMAGE_PREFIX
    assert str(IMAGE_JUPYTER_CONFIG).startswith(f"{images.IMAGE_PREFIX}/share/ailys-hub/")


def learner(uid=1234, gid=1234, shell="/bin/bash") -> pwd.struct_passwd:
    return pwd.struct_passwd(("ana", "x", uid, gid, "", "/srv/homes/ana", shell))


def plan_for(catalogue, options=None, account=None):
    profiles = {c.slug: course_profile(c, None) for c in catalogue.courses}
    launch = resolve(options or {}, profiles)
    return plan_container(
        image="localhost/ailys-python-ml:0123456789ab",
        course=launch.course,
        environment=launch.environment,
        cpus=launch.cpus,
        memory=launch.memory,
        account=account or learner(),
        username="ana",
        pids_limit=1024,
        tmp_size=2**28,
    )


def test_course_resources_become_the_containers_limits(write_catalogue):
    catalogue = docker_catalogue(write_catalogue)
    plan = plan_for(catalogue)
    assert (plan.mem_limit, plan.cpu_limit) == (3 * GiB, 2.0)
    assert plan.host["memswap_limit"] == 3 * GiB  # no swap beyond the memory limit
    assert plan.host["pids_limit"] == 1024
    # the learner's own smaller request, within the course's limits (the form's cpus and memory)
    smaller = plan_for(catalogue, {"cpus": 1, "memory": GiB})
    assert (smaller.mem_limit, smaller.cpu_limit, smaller.host["memswap_limit"]) == (GiB, 1.0, GiB)


def test_a_container_runs_as_the_learner_with_no_privilege_and_their_home(write_catalogue):
    catalogue = docker_catalogue(write_catalogue)
    plan = plan_for(catalogue)
    assert plan.create["user"] == "1234:1234" and plan.create["working_dir"] == "/srv/homes/ana"
    assert plan.volumes == {"/srv/homes/ana": {"bind": "/srv/homes/ana", "mode": "rw"}}  # same path
    assert plan.host["cap_drop"] == ["ALL"] and plan.host["security_opt"] == ["no-new-privileges"]
    assert plan.host["read_only"] is True and plan.host["tmpfs"]["/tmp"].endswith(f"size={2**28}")
    assert plan.host["auto_remove"] is False  # kept until poll() has read why it ended
    assert plan.host["network_mode"] == "host"
    assert plan.create["labels"] == {
        "ailys-hub.user": "ana",
        "ailys-hub.course": "algo",
        "ailys-hub.environment": "python-ml",
    }
    assert plan.env == {"HOME": "/srv/homes/ana", "USER": "ana", "LOGNAME": "ana", "SHELL": "/bin/bash"}
    # a trainee's login shell says no; their terminals still need one
    assert plan_for(catalogue, account=learner(shell="/usr/sbin/nologin")).env["SHELL"] == "/bin/bash"


def test_the_server_env_has_no_second_copy_of_the_token(write_catalogue):
    plan = plan_for(docker_catalogue(write_catalogue))
    hub_env = {"JUPYTERHUB_API_TOKEN": "t0k", "JPY_API_TOKEN": "t0k", "JUPYTERHUB_USER": "ana", "X": 1}
    env = server_env(hub_env, plan)
    assert env["JUPYTERHUB_API_TOKEN"] == "t0k" and "JPY_API_TOKEN" not in env
    assert env["X"] == "1" and env["HOME"] == "/srv/homes/ana"


def test_the_launch_form_offers_cpus_and_memory_only():
    form = LaunchForm()
    template = str(TEMPLATES / "slurm-form.html.j2")
    courses = [
        {"slug": "algo", "title": "Algo", "cpus": 2, "memory": 3 * 1024**3, "gpus": 0, "partition": None}
    ]
    docker = form.render_launch_form(template, courses, last_end="It ran out of memory.", fields=FORM_FIELDS)
    assert 'name="cpus"' in docker and 'name="memory"' in docker
    assert 'name="gpus"' not in docker and 'name="walltime"' not in docker
    assert "It ran out of memory." in docker and "up to 2 CPU cores, 3G" in docker
    slurm = form.render_launch_form(template, courses, last_end="")  # the Slurm spawner's call: all four
    assert all(f'name="{f}"' in slurm for f in ("cpus", "memory", "gpus", "walltime"))


def test_the_launch_form_speaks_the_language_it_is_given():
    """The hub gives the form the catalogue of the reader's language (hub_config/hub_language.py)."""
    template = str(TEMPLATES / "slurm-form.html.j2")
    course = {
        "slug": "algo",
        "title": "Algo",
        "cpus": 0.5,
        "memory": 512 * 1024**2,
        "gpus": 1,
        "walltime": 5400,
    }
    french = LaunchForm(translations=lambda spawner: i18n.translations("fr"))
    html = french.render_launch_form(template, [{**course, "partition": "gpu"}], last_end="")
    assert "Environnement du cours" in html and "Durée de la session" in html
    assert "jusqu'à 0.5 cœur CPU, 512M, 1 GPU, 1h30m, partition gpu" in html
    assert "Course environment" not in html and "Session length" not in html
    english = LaunchForm().render_launch_form(template, [], last_end="")
    assert "You are enrolled in no course yet" in english


STATE = {
    "Running": False,
    "OOMKilled": False,
    "ExitCode": 0,
    "Error": "",
    "FinishedAt": "2026-12-02T17:05:03.5Z",
}


def explain(starting=False, **state):
    return end_of_container(
        {**STATE, **state}, course="algo", cpus=2, memory=3 * GiB, starting=starting, name="ailys-ana"
    )


def test_an_out_of_memory_end_is_explained_with_the_limit():
    for end in (explain(OOMKilled=True, ExitCode=137), explain(ExitCode=EXIT_OUT_OF_MEMORY)):
        assert end["oom_killed"]
        assert "ran out of memory" in end["message"] and "limit of 3G" in end["message"]
        assert "at 2026-12-02 17:05:03 UTC" in end["message"]
        assert "course algo, container ailys-ana, 2 CPU cores, 3G" in end["message"]


def test_other_ends_are_explained():
    killed = explain(ExitCode=137)
    assert not killed["oom_killed"] and "stopped from outside the hub (SIGKILL)" in killed["message"]
    assert "exited with an error (exit code 3)" in explain(ExitCode=3)["message"]
    assert "stopped by itself" in explain()["message"]
    assert "container failed (no such file)" in explain(ExitCode=127, Error="no such file")["message"]
    assert explain(starting=True, ExitCode=3)["message"].startswith(
        "Your session (course algo, container ailys-ana, 2 CPU cores, 3G) ended before its server answered"
    )
    assert "removed outside the hub" in gone(course="algo", name="ailys-ana")["message"]
