"""Every kind of bad site or course file gets an error naming file, key and reason."""

from pathlib import Path

import pytest

from hub_config.catalogue import CatalogueError, load_catalogue

from .conftest import SITE, course

BAD_COURSES = [
    # (what is wrong, course.yaml content, expected key, expected words in the reason)
    ("unknown top-level key", course(instructorz=["x"]), "instructorz", "unknown key"),
    ("unknown nested key", course(resources={"cpu": 2}), "resources.cpu", "unknown key (allowed here: cpus"),
    ("memory in French units", course(resources={"memory": "4 Go"}), "resources.memory", "not a size"),
    ("negative memory", course(resources={"memory": "-1"}), "resources.memory", "not a size"),
    ("zero memory", course(resources={"memory": "0G"}), "resources.memory", "greater than 0"),
    # YAML reads `memory: 2048` as an int: 2048 of what? A unit is asked for, not bytes assumed.
    ("memory without a unit", course(resources={"memory": 2048}), "resources.memory", "2048 has no unit"),
    ("walltime without a unit", course(resources={"walltime": 240}), "resources.walltime", "240 has no unit"),
    ("ambiguous walltime", course(resources={"walltime": "2h30"}), "resources.walltime", "not a duration"),
    (
        "walltime over a year",
        course(resources={"walltime": "99999h"}),
        "resources.walltime",
        "4166d15h is more",
    ),
    (
        "walltime over the site's maximum",
        course(resources={"walltime": "13h"}),
        "resources.walltime",
        "13h is over the site's maximum for academic courses, 12h (spawner.max_walltime.academic in unit.yaml)",
    ),
    (
        "short course over its maximum",
        course(kind="short-course", resources={"walltime": "1-00:00:00"}),
        "resources.walltime",
        "1d is over the site's maximum for short-course courses, 8h",
    ),
    ("memory in bits", course(resources={"memory": "2Gb"}), "resources.memory", "a lowercase b means bits"),
    ("cpus as text", course(resources={"cpus": "many"}), "resources.cpus", "valid integer"),
    ("negative gpus", course(resources={"gpus": -1}), "resources.gpus", "greater than or equal to 0"),
    (
        "partition that is not one word",
        course(resources={"partition": "cpu --uid=0"}),
        "resources.partition",
        "pattern",
    ),
    ("end before start", course(start="2026-09-01", end="2026-08-01"), "end", "before it starts"),
    ("not a date", course(start="next monday"), "start", "date"),
    ("unknown kind", course(kind="bootcamp"), "kind", "academic"),
    (
        "both instructor and learner",
        course(learners=["prof", "ana"]),
        "learners",
        "both instructor and learner",
    ),
    ("learner listed twice", course(learners=["ana", "ana"]), "learners", "more than once"),
    ("no instructor", course(instructors=[]), "instructors", "at least 1"),
    ("bad username", course(learners=["Ana Maria"]), "learners[0]", "pattern"),
    ("title missing English", course(title={"fr": "Algo"}), "title.en", "required"),
    ("slug missing", {k: v for k, v in course().items() if k != "slug"}, "slug", "required"),
    ("slug not the folder name", course(slug="algebra"), "slug", "differs from its folder"),
    (
        "assignment listed twice",
        course(assignments=[{"name": "tp1"}, {"name": "tp1"}]),
        "assignments",
        "more than once",
    ),
    (
        "demo not a notebook",
        course(demos=[{"notebook": "../etc/passwd", "title": {"fr": "a", "en": "b"}}]),
        "demos[0].notebook",
        "pattern",
    ),
    ("duplicate YAML key", "slug: algo\nslug: algo\n", "", "given twice"),
    ("not YAML", "slug: [algo\n", "", "not valid YAML"),
    ("not a mapping", "- algo\n", "", "must be a mapping"),
]


@pytest.mark.parametrize("what, content, key, words", BAD_COURSES, ids=[b[0] for b in BAD_COURSES])
def test_bad_course_file(write_catalogue, what, content, key, words):
    site_file = write_catalogue(courses={"algo": content})
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(site_file)
    problems = caught.value.problems
    assert any(p.key == key and words in p.reason for p in problems), problems
    assert all(p.file == site_file.parent / "courses" / "algo" / "course.yaml" for p in problems)
    assert f"courses/algo/course.yaml: {key or '(top level)'}:" in str(caught.value)


BAD_SITES = [
    ("unknown key", {**SITE, "lisen": {}}, "lisen", "unknown key"),
    ("port out of range", {**SITE, "listen": {"port": 70000}}, "listen.port", "less than or equal to 65535"),
    (
        "two parts on one port",
        {**SITE, "listen": {"port": 8000, "hub_port": 8000}},
        "listen.hub_port",
        "already used",
    ),
    ("unsupported database", {**SITE, "database_url": "mysql://x"}, "database_url", "pattern"),
    ("unknown spawner kind", {**SITE, "spawner": {"kind": "kubernetes"}}, "spawner.kind", "local"),
    ("culler every 0", {**SITE, "culler": {"every": "0s"}}, "culler.every", "greater than 0"),
    (
        "container network not host",
        {**SITE, "spawner": {"kind": "docker", "docker": {"network": "bridge"}}},
        "spawner.docker.network",
        "host",
    ),
    (
        "sudo prefix without the learner",
        {**SITE, "spawner": {"kind": "slurm", "slurm": {"exec_prefix": "sudo -n --"}}},
        "spawner.slurm.exec_prefix",
        "{username}",
    ),
    (
        "slurm key misspelt",
        {**SITE, "spawner": {"kind": "slurm", "slurm": {"slurmconf": "/etc/slurm.conf"}}},
        "spawner.slurm.slurmconf",
        "unknown key",
    ),
    (
        "start timeout of zero",
        {**SITE, "spawner": {"start_timeout": "0s"}},
        "spawner.start_timeout",
        "greater than 0",
    ),
    ("culler bad duration", {**SITE, "culler": {"timeout": "1 hour"}}, "culler.timeout", "not a duration"),
    (
        "max walltime of no kind",
        {**SITE, "spawner": {"max_walltime": {"bootcamp": "8h"}}},
        "spawner.max_walltime.bootcamp[key]",
        "'academic', 'short-course' or 'project-team'",
    ),
    (
        "max walltime over a year",
        {**SITE, "spawner": {"max_walltime": {"academic": "400d"}}},
        "spawner.max_walltime.academic",
        "more than 365 days",
    ),
    (
        "max walltime of zero",
        {**SITE, "spawner": {"max_walltime": {"project-team": "0s"}}},
        "spawner.max_walltime.project-team",
        "greater than 0",
    ),
    (
        "short passwords",
        {**SITE, "authentication": {"minimum_password_length": 4}},
        "authentication.minimum_password_length",
        "greater than or equal to 8",
    ),
    ("name differs from file", {**SITE, "name": "other"}, "name", "differs from the file name"),
    ("data_dir missing", {k: v for k, v in SITE.items() if k != "data_dir"}, "data_dir", "required"),
]


@pytest.mark.parametrize("what, content, key, words", BAD_SITES, ids=[b[0] for b in BAD_SITES])
def test_bad_site_file(write_catalogue, what, content, key, words):
    site_file = write_catalogue(site=content)
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(site_file)
    assert any(p.key == key and words in p.reason and p.file == site_file for p in caught.value.problems), (
        caught.value
    )


def test_all_errors_of_a_file_come_together(write_catalogue):
    bad = course(instructorz=["x"], resources={"memory": "4 Go", "walltime": "2h30"}, end="2020-01-01")
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(write_catalogue(courses={"algo": bad}))
    keys = {p.key for p in caught.value.problems}
    assert {"instructorz", "resources.memory", "resources.walltime", "end"} <= keys


def test_errors_of_several_courses_come_together(write_catalogue):
    courses = {"algo": course(kind="x"), "stats": course("stats", cpus=1), "okay": course("okay")}
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(write_catalogue(courses=courses))
    assert {p.file.parent.name for p in caught.value.problems} == {"algo", "stats"}


def test_the_site_sets_the_longest_walltime_per_kind_and_every_course_over_it_is_named(write_catalogue):
    site = {**SITE, "spawner": {"max_walltime": {"academic": "2d"}}}
    long = {"resources": {"walltime": "30h"}}
    courses = {
        "algo": course(**long),  # academic: within the site's 2d
        "stage": course("stage", kind="short-course", **long),  # its default 8h holds
        "serre": course("serre", kind="project-team", **long),  # its default 24h holds
        "algo2": course("algo2", resources={"walltime": "3d"}),
    }
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(write_catalogue(site=site, courses=courses))
    assert sorted(str(p).split("courses/")[1] for p in caught.value.problems) == [
        "algo2/course.yaml: resources.walltime: 3d is over the site's maximum for academic courses, 2d "
        "(spawner.max_walltime.academic in unit.yaml)",
        "serre/course.yaml: resources.walltime: 1d6h is over the site's maximum for project-team courses, 1d "
        "(spawner.max_walltime.project-team in unit.yaml)",
        "stage/course.yaml: resources.walltime: 1d6h is over the site's maximum for short-course courses, 8h "
        "(spawner.max_walltime.short-course in unit.yaml)",
    ]


def test_a_course_at_its_kinds_maximum_is_valid(write_catalogue):
    courses = {
        "algo": course(resources={"walltime": "12:00:00"}),
        "stage": course("stage", kind="short-course", resources={"walltime": "8h"}),
        "serre": course("serre", kind="project-team", resources={"walltime": "24h"}),
    }
    catalogue = load_catalogue(write_catalogue(courses=courses))
    walltimes = {c.slug: c.resources.walltime for c in catalogue.courses}
    assert walltimes == {"algo": 12 * 3600, "stage": 8 * 3600, "serre": 24 * 3600}


def test_duplicate_slugs_are_refused(write_catalogue):
    # Two folders cannot share a name, but a copied folder keeps its old slug.
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(write_catalogue(courses={"algo": course(), "algo-copy": course()}))
    assert [(p.file.parent.name, p.key) for p in caught.value.problems] == [("algo-copy", "slug")]


def test_drafts_are_ignored(write_catalogue):
    catalogue = load_catalogue(write_catalogue(courses={"algo": course(), "_draft": "not: [valid"}))
    assert [c.slug for c in catalogue.courses] == ["algo"]


def test_a_valid_catalogue_has_typed_values(catalogue):
    algo = catalogue.course("algo")
    assert algo.resources.memory == 2 * 1024**3 and algo.resources.walltime == 4 * 3600
    assert str(algo.start) == "2026-09-01"
    assert catalogue.people() == ["ana", "ben", "cleo", "prof", "prof2", "root-admin"]
    assert catalogue.site.culler.timeout == 3600


def test_a_running_hub_keeps_the_last_valid_catalogue(write_catalogue, caplog):
    import logging

    from hub_config.catalogue import LiveCatalogue

    site_file = write_catalogue(courses={"algo": course()})
    live = LiveCatalogue(site_file, logging.getLogger("test"))
    assert [c.slug for c in live.current().courses] == ["algo"]
    (site_file.parent / "courses" / "algo" / "course.yaml").write_text("slug: algo\nkind: [broken\n")
    with caplog.at_level(logging.ERROR):
        assert [c.slug for c in live.current().courses] == ["algo"]
    assert "keeping the previous one" in caplog.text and "not valid YAML" in caplog.text


@pytest.mark.parametrize("site", ["local", "slurm"])
def test_the_shipped_sites_are_valid(site):
    catalogue = load_catalogue(Path(__file__).parents[2] / "hub_config" / "sites" / f"{site}.yaml")
    assert catalogue.site.spawner.kind == site
    assert {c.slug for c in catalogue.courses} >= {"frugal-ml", "ia-industrie"}
