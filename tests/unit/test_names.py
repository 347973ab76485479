"""The names the hub and its services agree on (hub_config/names.py), pinned as the hub spells them."""

import ast
import sys
from pathlib import Path

import pytest

from hub_config import names

REPO = Path(__file__).resolve().parents[2]


def test_each_course_s_names():
    assert names.course_group("algo") == "course-algo"
    assert names.staff_group("algo") == "staff-algo"
    assert names.instructor_role("algo") == "instructor-algo"
    assert names.grading_service("frugal-ml") == "grading-frugal-ml"


@pytest.mark.parametrize(
    ("group", "slug"),
    [
        ("course-algo", "algo"),
        ("staff-frugal-ml", "frugal-ml"),
        ("course-", None),
        ("instructor-algo", None),
        ("grading-algo", None),
        ("admins", None),
    ],
)
def test_the_course_of_a_group_is_read_back_from_its_name(group, slug):
    assert names.course_of_group(group) == slug


def test_services_scopes_and_prefixes():
    assert names.EXCHANGE_SERVICE == "exchange" and names.GALLERY_SERVICE == "gallery"
    assert names.access_scope("exchange") == "access:services!service=exchange"
    assert names.service_prefix("exchange") == "/services/exchange/"
    assert names.service_prefix("grading-algo", "/hub-a/") == "/hub-a/services/grading-algo/"


@pytest.mark.parametrize("module", ["hub_config/names.py", "grading/exchange/routes.py"])
def test_imports_only_the_standard_library(module):
    """spawners/ may use the names and learners' servers the routes: neither may pull in anything more."""
    tree = ast.parse((REPO / module).read_text())
    imported = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    imported |= {
        n.module.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level == 0
    }
    assert not any(isinstance(n, ast.ImportFrom) and n.level for n in ast.walk(tree))  # nothing of ours
    assert imported <= set(sys.stdlib_module_names), imported - set(sys.stdlib_module_names)


def test_team_names_fit_unix_limits_and_stay_distinct():
    short = names.team_name("frugal-ml", "vision")
    assert short == "team-frugal-ml-vision"
    assert names.mentor_group("frugal-ml", "vision") == "mentors-frugal-ml-vision"
    assert names.team_server_role("frugal-ml", "vision") == "team-server-frugal-ml-vision"
    # a 40-character course and a 16-character team: cut to 32, and two such teams stay apart
    long_a = names.team_name("a" * 40, "vision-team-abcd")
    long_b = names.team_name("a" * 40, "vision-team-abce")
    assert len(long_a) == len(long_b) == names.UNIX_NAME_MAX
    assert long_a != long_b and long_a.startswith("team-aaaa")
    assert names.team_name("a" * 40, "vision-team-abcd") == long_a  # stable
