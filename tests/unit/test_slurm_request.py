"""The Slurm launch request (spawners/slurm/request.py): the form's fields, read by the one units
module as course.yaml's are, and a request resolved against the learner's course profiles."""

import pytest

from hub_config.catalogue import CatalogueError, load_catalogue
from hub_config.profiles import course_profile
from spawners.slurm.errors import SlurmSpawnError
from spawners.slurm.request import Launch, check_profiles, parse_form, resolve

from .conftest import course

GiB = 1024**3
ALGO = {
    "title": "Algorithmique",
    "partition": "cpu",
    "account": "m2-ia",
    "qos": None,
    "reservation": None,
    "cpus": 2,
    "memory": 4 * GiB,
    "gpus": 0,
    "walltime": 4 * 3600,
}
PROFILES = check_profiles({"algo": ALGO, "deep": {**ALGO, "partition": "gpu", "gpus": 1}})


def from_course_yaml(write_catalogue, **resources) -> dict:
    """The resources course.yaml gives for these texts (the first entry point)."""
    site = load_catalogue(write_catalogue(courses={"algo": course(resources=resources)}))
    r = site.course("algo").resources
    return {key: getattr(r, key) for key in resources}


@pytest.mark.parametrize(
    "memory, walltime",
    [("2G", "30:00"), ("1.5GiB", "01:30:00"), ("512M", "0-10:30"), ("3072MB", "1h 30m"), ("1T", "12h")],
)
def test_the_same_text_means_the_same_in_course_yaml_and_on_the_form(write_catalogue, memory, walltime):
    on_the_form = parse_form({"memory": [memory], "walltime": [walltime]})
    assert on_the_form == from_course_yaml(write_catalogue, memory=memory, walltime=walltime)


def test_thirty_colon_zero_is_thirty_minutes_on_the_form_as_in_slurm():
    assert parse_form({"walltime": ["30:00"]}) == {"walltime": 1800}
    assert parse_form({"walltime": ["1-04:00"]}) == {"walltime": 28 * 3600}


@pytest.mark.parametrize("key, text", [("memory", "2048"), ("walltime", "240")])
def test_a_bare_number_is_refused_on_the_form_and_in_course_yaml(write_catalogue, key, text):
    with pytest.raises(SlurmSpawnError, match=f"Not started: .*: {text} has no unit") as refused:
        parse_form({key: [text]})
    assert refused.value.jupyterhub_message.endswith(".")
    with pytest.raises(CatalogueError, match=f"{text} has no unit"):
        from_course_yaml(write_catalogue, **{key: int(text)})  # YAML reads `memory: 2048` as an int


def test_the_form_gives_the_course_and_the_resources_typed():
    form = {"course": ["deep"], "cpus": [" 2 "], "gpus": ["1"], "memory": ["2G"], "walltime": [""]}
    assert parse_form(form) == {"course": "deep", "cpus": 2, "gpus": 1, "memory": 2 * GiB}
    with pytest.raises(SlurmSpawnError, match="CPU cores: 'two' is not a whole number"):
        parse_form({"cpus": ["two"]})
    with pytest.raises(SlurmSpawnError, match="ambiguous"):
        parse_form({"memory": ["2Gb"]})


def test_a_request_becomes_a_launch_within_the_courses_limits():
    assert resolve({}, PROFILES) == Launch(
        course="algo",
        title="Algorithmique",
        partition="cpu",
        account="m2-ia",
        qos=None,
        reservation=None,
        cpus=2,
        memory=4 * GiB,
        gpus=0,
        walltime=4 * 3600,
    )
    launch = resolve({"course": "deep", "memory": GiB, "walltime": 3600}, PROFILES)
    assert (launch.partition, launch.gpus, launch.memory, launch.walltime) == ("gpu", 1, GiB, 3600)


@pytest.mark.parametrize(
    "options, reason, words",
    [
        ({"course": "stats"}, "foreign-course", "not enrolled in course 'stats'. You can start: algo, deep."),
        ({"memory": 8 * GiB}, "over-limit", "memory 8G is over what course algo allows (4G)."),
        ({"walltime": 5 * 3600}, "over-limit", "session length 5h is over what course algo allows (4h)."),
        ({"walltime": 30}, "invalid-request", "session length must be at least 1m."),
        ({"cpus": "2"}, "invalid-request", "CPU cores must be a whole number."),
        ({"nodes": 2}, "invalid-request", "unknown option(s) nodes."),
    ],
)
def test_a_request_out_of_bounds_is_refused_saying_why(options, reason, words):
    with pytest.raises(SlurmSpawnError) as refused:
        resolve(options, PROFILES)
    assert refused.value.reason == reason and words in refused.value.jupyterhub_message


def test_no_course_no_launch():
    with pytest.raises(SlurmSpawnError, match="enrolled in no course") as refused:
        resolve({}, {})
    assert refused.value.reason == "no-course"


def test_profiles_come_complete_from_the_schema_or_are_refused(write_catalogue):
    site = load_catalogue(write_catalogue(courses={"algo": course()}))
    profile = course_profile(site.course("algo"), "cpu")  # the schema's defaults, nothing added here
    assert check_profiles({"algo": profile})["algo"] == profile
    with pytest.raises(SlurmSpawnError, match="Course algo is misconfigured: memory None") as refused:
        check_profiles({"algo": {**profile, "memory": None}})
    assert refused.value.status_code == 500
    with pytest.raises(SlurmSpawnError, match="misconfigured: partition 'cpu --uid=0'"):
        resolve({}, check_profiles({"algo": {**profile, "partition": "cpu --uid=0"}}))
