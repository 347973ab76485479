"""The grading applier on an empty Config, the schema keys it reads, and the course folder's
nbgrader settings."""

import sys

import pytest
from traitlets.config import Config

from hub_config.appliers import apply_all
from hub_config.appliers.grading import apply_grading, service_ports
from hub_config.catalogue import CatalogueError, load_catalogue
from hub_config.secrets import Secrets

from .conftest import SITE, course

ASSIGNMENTS = [{"name": "ps1", "due": "2026-10-01T12:00:00+02:00"}]


@pytest.fixture
def two_courses(write_catalogue):
    return load_catalogue(
        write_catalogue(
            courses={
                "algo": course(assignments=ASSIGNMENTS),
                "stats": course("stats", instructors=["prof2"], learners=["cleo"], assignments=ASSIGNMENTS),
                "intro": course("intro", instructors=["prof3"]),  # no assignments: no grading service
            }
        )
    )


def test_one_service_per_course_with_assignments_reached_by_its_staff_only(two_courses):
    c = Config()
    apply_grading(c, two_courses)
    assert [s["name"] for s in c.JupyterHub.services] == ["grading-algo", "grading-stats"]
    algo = c.JupyterHub.services[0]
    assert (
        algo["url"] == "http://127.0.0.1:8300" and c.JupyterHub.services[1]["url"] == "http://127.0.0.1:8301"
    )
    assert algo["command"] == [sys.executable, "-m", "grading.service", str(two_courses.site_file), "algo"]
    assert (
        algo["display"] is True and "api_token" not in algo and "user" not in algo
    )  # managed, hub's account
    assert algo["environment"] == {"AILYS_EXCHANGE_URL": "http://127.0.0.1:8082/services/exchange/"}
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert set(roles) == {"grading-algo", "grading-stats"}  # no user's role: the authenticator grants those
    # the service itself may reach the exchange, and nothing else of the hub
    assert roles["grading-algo"] == {
        **roles["grading-algo"],
        "scopes": ["access:services!service=exchange"],
        "services": ["grading-algo"],
    }
    assert set(c) == {"JupyterHub"}


def test_ports_follow_the_slugs_from_the_sites_first_port(write_catalogue):
    site = {**SITE, "formgraders": {"port": 9400}}
    cat = load_catalogue(
        write_catalogue(
            site=site,
            courses={
                "zeta": course("zeta", assignments=ASSIGNMENTS),
                "beta": course("beta", assignments=ASSIGNMENTS),
            },
        )
    )
    assert service_ports(cat) == {"beta": 9400, "zeta": 9401}


def test_apply_all_adds_the_grading_services_after_the_exchange(two_courses):
    c = apply_all(Config(), two_courses, Secrets(two_courses.data_dir, "p" * 64, "s" * 64, "c" * 64))
    names = [s["name"] for s in c.JupyterHub.services]
    assert names.index("exchange") < names.index("grading-algo")
    assert "grading-intro" not in names


def test_no_course_with_assignments_no_service(catalogue):
    c = Config()
    apply_grading(c, catalogue)
    assert c.JupyterHub.get("services", []) == [] and c.JupyterHub.get("load_roles", []) == []


@pytest.mark.parametrize(
    ("grades", "message"),
    [
        ({"late": {"action": "drop"}}, "grades.late.action"),
        ({"late": {"grace": "ten minutes"}}, "grades.late.grace"),
        ({"emails": {"ana": "not-an-address"}}, "not an email address for ana"),
        ({"database_url": "mysql://x/y"}, "grades.database_url"),
        ({"typo": 1}, "grades.typo"),
    ],
)
def test_bad_grades_settings_are_refused_naming_the_key(write_catalogue, grades, message):
    with pytest.raises(CatalogueError, match=message):
        load_catalogue(write_catalogue(courses={"algo": course(grades=grades)}))


def test_a_shared_postgresql_url_must_name_the_course(write_catalogue):
    site = {**SITE, "formgraders": {"database_url": "postgresql://grader@db/nbgrader"}}
    with pytest.raises(CatalogueError, match="formgraders.database_url"):
        load_catalogue(write_catalogue(site=site))


def test_gradebook_urls_course_then_site_then_sqlite(write_catalogue):
    from grading.courses import course_dir, gradebook_url

    site = {**SITE, "formgraders": {"database_url": "postgresql://grader@db/nb_{course}"}}
    cat = load_catalogue(
        write_catalogue(
            site=site,
            courses={
                "algo": course(assignments=ASSIGNMENTS),
                "data-viz": course("data-viz", assignments=ASSIGNMENTS),
                "stats": course(
                    "stats", grades={"database_url": "sqlite:////srv/stats.db"}, assignments=ASSIGNMENTS
                ),
            },
        )
    )
    assert gradebook_url(cat, cat.course("data-viz")) == "postgresql://grader@db/nb_data_viz"
    assert gradebook_url(cat, cat.course("stats")) == "sqlite:////srv/stats.db"
    assert course_dir(cat, "algo") == cat.data_dir / "grading" / "algo"


def test_the_course_folders_nbgrader_config_uses_our_exchange_and_tamper_check(two_courses):
    from traitlets.config import Config as TConfig

    from grading.courses import nbgrader_config

    cfg = TConfig(nbgrader_config(two_courses, two_courses.course("algo")))
    assert cfg.CourseDirectory.course_id == "algo"
    assert (
        cfg.CourseDirectory.db_url
        == f"sqlite:///{two_courses.data_dir / 'grading' / 'algo' / 'gradebook.db'}"
    )
    assert cfg.ExchangeFactory.collect == "grading.exchange.client.ExchangeCollect"
    assert cfg.Autograde.sanitize_preprocessors[0] == "grading.integrity.FlagTampering"
    assert "nbgrader.preprocessors.OverwriteCells" in cfg.Autograde.sanitize_preprocessors


def test_instructors_hold_their_courses_grading_access_and_no_other(two_courses):
    from hub_config.appliers.grading import staff_scopes

    assert staff_scopes(two_courses.course("algo")) == ["access:services!service=grading-algo"]
    assert staff_scopes(two_courses.course("intro")) == []  # no assignments, no service
