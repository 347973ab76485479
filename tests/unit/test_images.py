"""Course environments without building anything: the strict environment schema, lock parsing,
tags from spec hashes, what the learner side puts into an image, and course validation."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from hub_config.catalogue import CatalogueError, load_catalogue
from images import REPO, SPECS_DIR, environments
from images.build import apt_mirror, base_key
from images.frugal import removable
from images.spec import SpecError, learner_files, load_spec, parse_lock

from .conftest import course

HASH_A = "a" * 64
HASH_B = "b" * 64


def environment(**over) -> dict:
    base = {
        "title": {"fr": "Essai", "en": "Trial"},
        "debian": [],
        "kernels": ["python3"],
        "smoke": {"imports": ["json"], "cells": [{"code": "print(1 + 1)", "expect": "2"}]},
    }
    base.update(over)
    return base


LOCK = f"""\
# generated
httpx==0.29.0 \\
    --hash=sha256:{HASH_A} \\
    --hash=sha256:{HASH_B}
    # via -r requirements.in
Pillow==13.0.0 --hash=sha256:{HASH_A}
"""


@pytest.fixture
def specs(tmp_path) -> Path:
    """A copy of images/python-ml as images/trial in a temp specs folder."""
    folder = tmp_path / "specs" / "trial"
    folder.mkdir(parents=True)
    (folder / "environment.yaml").write_text(yaml.safe_dump(environment()))
    (folder / "requirements.lock").write_text(LOCK)
    return tmp_path / "specs"


def problems_of(specs: Path, env: str = "trial") -> list:
    with pytest.raises(SpecError) as caught:
        load_spec(env, specs)
    return caught.value.problems


# --- the real specs ---------------------------------------------------------------------------


@pytest.mark.parametrize("env", ["python-ml", "r-stats"])
def test_shipped_specs_are_valid(env):
    spec = load_spec(env)
    assert spec.tag == f"localhost/ailys-{env}:{spec.hash[:12]}"
    assert {"jupyterhub", "jupyterlab", "nbgrader", "httpx", "ipykernel"} <= {p.name for p in spec.pins}
    assert all(p.hashes for p in spec.pins)


def test_r_stats_differs_for_real():
    python, r = load_spec("python-ml"), load_spec("r-stats")
    assert "ir" in r.environment.kernels and "r-cran-irkernel" in r.environment.debian
    assert "scikit-learn" in {p.name for p in python.pins} - {p.name for p in r.pins}


def test_environments_listed():
    assert {"python-ml", "r-stats"} <= set(environments())


# --- schema -----------------------------------------------------------------------------------

BAD_ENVIRONMENTS = [
    ("unknown key", environment(packages=["vim"]), "packages", "unknown key (allowed here: title"),
    ("unknown nested key", environment(smoke={"import": ["x"]}), "smoke.import", "unknown key"),
    ("shell in a Debian package", environment(debian=["vim; rm -rf /"]), "debian[0]", "pattern"),
    ("package listed twice", environment(debian=["r-base-core", "r-base-core"]), "debian", "twice"),
    ("unknown kernel", environment(kernels=["python3", "julia"]), "kernels[1]", "'python3' or 'ir'"),
    ("no python kernel", environment(kernels=["ir"], debian=["r-cran-irkernel"]), "kernels", "python3 is"),
    ("ir without IRkernel", environment(kernels=["python3", "ir"]), "", "needs the Debian package"),
    ("not a module", environment(smoke={"imports": ["os; import x"]}), "smoke.imports[0]", "pattern"),
    ("other Debian release", environment(suite="trixie"), "suite", "bookworm"),
    ("title missing", {k: v for k, v in environment().items() if k != "title"}, "title", "required"),
]


@pytest.mark.parametrize("what, content, key, words", BAD_ENVIRONMENTS, ids=[b[0] for b in BAD_ENVIRONMENTS])
def test_bad_environment(specs, what, content, key, words):
    (specs / "trial" / "environment.yaml").write_text(yaml.safe_dump(content))
    problems = problems_of(specs)
    assert any(p.key == key and words in p.reason for p in problems), problems
    assert all(p.file == specs / "trial" / "environment.yaml" for p in problems)


def test_every_problem_at_once(specs):
    bad = environment(packages=[], kernels=["perl"], debian=["A B"])
    (specs / "trial" / "environment.yaml").write_text(yaml.safe_dump(bad))
    (specs / "trial" / "requirements.lock").write_text("httpx==0.29.0\n")
    keys = {(p.file.name, p.key) for p in problems_of(specs)}
    assert {
        ("environment.yaml", "packages"),
        ("environment.yaml", "kernels[0]"),
        ("environment.yaml", "debian[0]"),
        ("requirements.lock", "line 1"),
    } <= keys


def test_unknown_environment_names_those_that_exist(specs):
    (problem,) = problems_of(specs, "python-mll")
    assert problem.key == "python-mll" and "environments: trial" in problem.reason


# --- lock -------------------------------------------------------------------------------------


def test_lock_pins_and_hashes():
    pins = parse_lock(LOCK)
    assert [(p.name, p.version, p.hashes) for p in pins] == [
        ("httpx", "0.29.0", (HASH_A, HASH_B)),
        ("pillow", "13.0.0", (HASH_A,)),
    ]


BAD_LOCKS = [
    ("no hash", "httpx==0.29.0\n", "line 1", "has no --hash"),
    ("a range, not a pin", f"httpx>=0.28 --hash=sha256:{HASH_A}\n", "line 1", "not a pinned requirement"),
    ("an editable", "-e .\n", "line 1", "not a pinned requirement"),
    (
        "another index",
        f"--index-url https://example.org\nx==1 --hash=sha256:{HASH_A}\n",
        "line 1",
        "not a pinned",
    ),
    ("a short hash", "x==1 --hash=sha256:abc\n", "line 1", "only --hash=sha256:<hex>"),
    ("md5", f"x==1 --hash=md5:{HASH_A[:32]}\n", "line 1", "only --hash=sha256"),
    ("pinned twice", f"x==1 --hash=sha256:{HASH_A}\nX==2 --hash=sha256:{HASH_B}\n", "line 2", "twice"),
    ("empty", "# nothing\n", "", "pins no package"),
]


@pytest.mark.parametrize("what, text, key, words", BAD_LOCKS, ids=[b[0] for b in BAD_LOCKS])
def test_bad_lock(what, text, key, words):
    with pytest.raises(SpecError) as caught:
        parse_lock(text)
    assert any(p.key == key and words in p.reason for p in caught.value.problems), caught.value.problems


def test_bad_lock_line_named_after_continuations():
    text = f"a==1 \\\n    --hash=sha256:{HASH_A}\n# comment\nb==2\n"
    with pytest.raises(SpecError) as caught:
        parse_lock(text)
    assert [p.key for p in caught.value.problems] == ["line 4"]


# --- tags -------------------------------------------------------------------------------------


def test_tag_is_stable(specs):
    assert load_spec("trial", specs).tag == load_spec("trial", specs).tag


def test_tag_keeps_on_comments_whitespace_and_title(specs):
    before = load_spec("trial", specs).tag
    spec_file = specs / "trial" / "environment.yaml"
    edited = environment(title={"fr": "Autre", "en": "Other"}, smoke={"imports": ["os"]})
    spec_file.write_text("# a comment\n\n" + yaml.safe_dump(edited, indent=4))
    lock = specs / "trial" / "requirements.lock"
    lock.write_text(lock.read_text().replace("# via -r requirements.in", "# via whatever") + "\n\n")
    assert load_spec("trial", specs).tag == before


@pytest.mark.parametrize(
    "edit",
    [
        lambda f: f.joinpath("requirements.lock").write_text(LOCK.replace("0.29.0", "0.29.1")),
        lambda f: f.joinpath("requirements.lock").write_text(LOCK.replace(HASH_B, "c" * 64)),
        lambda f: f.joinpath("environment.yaml").write_text(yaml.safe_dump(environment(debian=["less"]))),
    ],
    ids=["version", "hash", "debian package"],
)
def test_tag_changes_with_what_the_image_holds(specs, edit):
    before = load_spec("trial", specs).tag
    edit(specs / "trial")
    assert load_spec("trial", specs).tag != before


def _learner_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    for source in learner_files(REPO).values():
        relative = source.relative_to(REPO)
        (repo / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, repo / relative)
    return repo


@pytest.mark.parametrize(
    "path", ["grading/exchange/routes.py", "spawners/jupyter-config/learner/nbgrader_config.py"]
)
def test_tag_changes_with_a_learner_file(specs, tmp_path, path):
    repo = _learner_repo(tmp_path)
    before = load_spec("trial", specs, repo).tag
    with open(repo / path, "a") as f:
        f.write("# changed\n")
    assert load_spec("trial", specs, repo).tag != before


def test_learner_files_follow_the_client_imports():
    files = learner_files()
    site = "lib/python3.11/site-packages"
    assert {
        f"{site}/grading/__init__.py",
        f"{site}/grading/exchange/__init__.py",
        f"{site}/grading/exchange/client.py",
        f"{site}/grading/learner_extension.py",  # the Assignments panel's server side
        f"{site}/grading/exchange/routes.py",
        f"{site}/grading/exchange/storage.py",
        f"{site}/hub_config/__init__.py",
        f"{site}/hub_config/units.py",  # storage.py's size formatter
        "share/ailys-hub/jupyter-config/learner/nbgrader_config.py",
        "share/ailys-hub/jupyter-config/learner/labconfig/page_config.json",
    } <= set(files)
    # The hub's side stays out: the exchange service, the catalogue, the spawners.
    assert not {f"{site}/grading/exchange/service.py", f"{site}/hub_config/catalogue.py"} & set(files)


# --- build helpers ----------------------------------------------------------------------------


def test_base_key_ignores_package_order():
    assert base_key("bookworm", ["a", "b"]) == base_key("bookworm", ["b", "a"]) != base_key("bookworm", ["a"])


def test_apt_mirror(tmp_path):
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb [arch=amd64] http://mirror.test/debian bookworm main\n")
    assert apt_mirror(tmp_path) == "http://mirror.test/debian"
    (tmp_path / "sources.list").write_text("")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://other.test/debian-security\n\nTypes: deb\nURIs: http://other.test/debian\n"
    )
    assert apt_mirror(tmp_path) == "http://other.test/debian"
    (tmp_path / "sources.list.d" / "debian.sources").unlink()
    with pytest.raises(ValueError, match="no Debian archive"):
        apt_mirror(tmp_path)


def test_frugal_keeps_licences_and_our_locales(tmp_path):
    for path in [
        "usr/share/doc/python3/copyright",
        "usr/share/doc/python3/changelog.gz",
        "usr/share/locale/fr/LC_MESSAGES/x.mo",
        "usr/share/locale/en@quot/LC_MESSAGES/x.mo",
        "usr/share/locale/de/LC_MESSAGES/x.mo",
        "opt/ailys-env/lib/python3.11/site-packages/pandas/tests/test_x.py",
        "opt/ailys-env/lib/python3.11/site-packages/pandas/testing.py",
        "opt/ailys-env/lib/python3.11/site-packages/jinja2/tests.py",
    ]:
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text("x")
    gone = {
        str(p.relative_to(tmp_path)) for paths in removable(tmp_path).values() for p in paths if p.exists()
    }
    assert gone == {
        "usr/share/doc/python3/changelog.gz",
        "usr/share/locale/de",
        "opt/ailys-env/lib/python3.11/site-packages/pandas/tests",
    }


# --- courses name an environment that exists -------------------------------------------------


def test_course_with_unknown_environment_is_refused(write_catalogue):
    site_file = write_catalogue(courses={"algo": course(environment="python-mll")})
    with pytest.raises(CatalogueError) as caught:
        load_catalogue(site_file)
    (problem,) = caught.value.problems
    assert problem.file.name == "course.yaml" and problem.key == "environment"
    assert "'python-mll' names no environment" in problem.reason
    assert "python-ml, r-stats" in problem.reason


def test_specs_dir_is_the_catalogues():
    from hub_config.catalogue import ENVIRONMENTS_DIR

    assert ENVIRONMENTS_DIR == SPECS_DIR
