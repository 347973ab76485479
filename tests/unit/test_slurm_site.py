"""The slurm site kind: its applier on an empty Config, and course profiles from course.yaml."""

import datetime as dt

from traitlets.config import Config

from hub_config.appliers.spawner import apply_spawner
from hub_config.catalogue import load_catalogue
from hub_config.profiles import course_profile, profiles_for

from .conftest import SITE, course

GiB = 1024**3
SLURM_SITE = {
    **SITE,
    "spawner": {
        "kind": "slurm",
        "slurm": {
            "slurm_conf": "cluster/slurm.conf",
            "default_partition": "cpu",
            "node_addresses": {"node1": "10.1.0.11"},
            "exec_prefix": "sudo -n -u {username} --",
        },
    },
}
COURSES = {
    "algo": course(resources={"cpus": 2, "memory": "3G", "walltime": "2h", "account": "m2-ia"}),
    "deep": course(
        "deep",
        learners=["ana"],
        start="2027-02-01",
        end="2027-06-30",
        resources={"partition": "gpu", "gpus": 1, "qos": "short", "reservation": "tp-lundi"},
    ),
    "old": course("old", learners=["ana"], start="2025-09-01", end="2026-01-31"),
    "stats": course("stats", instructors=["prof2"], learners=["cleo"]),
}


def slurm_catalogue(write_catalogue):
    return load_catalogue(write_catalogue(site=SLURM_SITE, courses=COURSES))


def test_slurm_applier(write_catalogue):
    catalogue = slurm_catalogue(write_catalogue)
    c = Config()
    apply_spawner(c, catalogue)
    assert c.JupyterHub.spawner_class == "spawners.slurm.SlurmSpawner"
    # relative to the site file, as every path of the site file
    assert c.SlurmSpawner.slurm_env == {
        "SLURM_CONF": str(catalogue.site_file.parent / "cluster" / "slurm.conf")
    }
    assert c.SlurmSpawner.node_addresses == {"node1": "10.1.0.11"}
    assert c.SlurmSpawner.exec_prefix == "sudo -n -u {username} --"
    assert c.Spawner.start_timeout == 1800  # a queue wait, not a local process start
    assert c.Spawner.poll_interval == 30
    assert "LocalSpawner" not in c and "ip" not in c.Spawner  # the job says where it runs
    profiles = c.SlurmSpawner.profiles(["course-algo"])
    assert list(profiles) == ["algo"]


def test_the_site_start_timeout_wins(write_catalogue):
    site = {**SLURM_SITE, "spawner": {**SLURM_SITE["spawner"], "start_timeout": "4h"}}
    c = Config()
    apply_spawner(c, load_catalogue(write_catalogue(site=site, courses=COURSES)))
    assert c.Spawner.start_timeout == 4 * 3600


def test_local_start_timeout_default(catalogue):
    c = Config()
    apply_spawner(c, catalogue)
    assert c.Spawner.start_timeout == 120


def test_profile_of_a_course(write_catalogue):
    catalogue = slurm_catalogue(write_catalogue)
    assert course_profile(catalogue.course("algo"), "cpu") == {
        "title": "Algorithmique (Algorithms)",
        "partition": "cpu",
        "account": "m2-ia",
        "qos": None,
        "reservation": None,
        "cpus": 2,
        "memory": 3 * GiB,
        "gpus": 0,
        "walltime": 2 * 3600,
        "environment": "python-ml",  # the schema's default: the image a container session runs
    }
    deep = course_profile(catalogue.course("deep"), "cpu")
    assert (deep["partition"], deep["gpus"], deep["qos"], deep["reservation"]) == (
        "gpu",
        1,
        "short",
        "tp-lundi",
    )


def test_profiles_are_the_users_courses_in_session_first(write_catalogue):
    catalogue = slurm_catalogue(write_catalogue)
    today = dt.date(2026, 11, 21)
    # ana: algo in session, deep upcoming, old ended; the form's default is the first
    assert list(profiles_for(catalogue, ["course-old", "course-deep", "course-algo"], "cpu", today)) == [
        "algo",
        "deep",
        "old",
    ]
    assert list(profiles_for(catalogue, ["staff-stats"], "cpu", today)) == ["stats"]  # instructors too
    assert profiles_for(catalogue, ["course-nothing", "other"], "cpu", today) == {}


def test_profiles_follow_the_course_folders_without_a_restart(write_catalogue):
    c = Config()
    catalogue = slurm_catalogue(write_catalogue)
    apply_spawner(c, catalogue)
    folder = catalogue.courses_dir / "new"
    folder.mkdir()
    (folder / "course.yaml").write_text(
        "slug: new\ntitle: {fr: Nouveau, en: New}\nkind: academic\ninstructors: [prof]\n"
        "learners: [dan]\nstart: 2026-09-01\nend: 2027-06-30\n"
    )
    assert list(c.SlurmSpawner.profiles(["course-new"])) == ["new"]
