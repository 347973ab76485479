"""What the platform holds on a person, on real files in a temporary data folder: a home, the
exchange's submissions and feedback made through its own store, grading's copies, a SQLite nbgrader
gradebook made with nbgrader's Gradebook, a hub database made by JupyterHub's ORM with
NativeAuthenticator's table, cohort and roster records, log-in records. Export packs each one;
forget removes each one and says so, keeping grades where the course's rule says; retention
archives and deletes after its delays, with the time given."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import secrets
import shutil
import stat
import tarfile
import zipfile
from pathlib import Path

import bcrypt
import pytest
import zstandard

from grading.exchange.storage import ExchangeStore, Limits
from hub_config import roster
from hub_config.catalogue import load_catalogue
from hub_config.personal_data import export, forget, record_login, run_retention
from hub_config.personal_data.gradebooks import keeps_grades
from hub_config.personal_data.hub_records import hub_record
from hub_config.personal_data.logins import login_method, read_logins
from hub_config.personal_data.places import check_person, places
from hub_config.schema import Course

from .conftest import SITE, course

TINA, ANN = "pd-tina", "pd-ann"  # a trainee of a short course; a learner of an academic course
SHORT, ALGO = "pd-short", "pd-algo"
UTC = dt.UTC
NOW = dt.datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
NOTEBOOK = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()
LIMITS = Limits(max_file_size=10**6, max_total_size=10**7, max_files=10)


def courses(algo_keeps: bool | None = None) -> dict:
    grades = {} if algo_keeps is None else {"keep_after_forget": algo_keeps}
    return {
        SHORT: course(
            SHORT,
            kind="short-course",
            instructors=["pd-prof"],
            learners=[],
            start="2026-11-02",
            end="2026-11-03",  # window: 2026-10-30 to 2026-11-11 00:00 (Paris), by default
            assignments=[{"name": "ps1"}],
        ),
        ALGO: course(
            ALGO, instructors=["pd-prof"], learners=[ANN], assignments=[{"name": "ps1"}], grades=grades
        ),
    }


def write_cohort(data, slug, *names):
    trainees = [
        {"username": n, "email": f"{n}@example.fr", "first_name": "Tina", "last_name": "Émile",
         "company": "Acme", "imported": "2026-10-20T09:00:00+00:00",
         "invitation": {"sha256": "ab" * 32, "created": "2026-10-20T09:00:00+00:00", "used": None}}
        for n in names
    ]  # fmt: skip
    roster.write_json(data / "cohorts" / f"{slug}.json", {"trainees": trainees})


def make_gradebook(db: Path, slug: str, student: str, score: float) -> None:
    from nbgrader.api import Gradebook

    from grading.autograde.course import alembic_on_path

    alembic_on_path()
    with Gradebook(f"sqlite:///{db}", slug) as gb:
        gb.add_assignment("ps1")
        gb.add_notebook("ps1", "ps1")
        gb.add_grade_cell("q1", "ps1", "ps1", max_score=2, cell_type="code")
        gb.add_solution_cell("a1", "ps1", "ps1")
        gb.add_student(student, first_name="Tina", last_name="Émile", email=f"{student}@example.fr")
        gb.add_student("pd-other")
        for who in (student, "pd-other"):
            gb.add_submission("ps1", who, timestamp=dt.datetime(2026, 11, 3, 10, 0))
        gb.find_grade("q1", "ps1", "ps1", student).manual_score = score
        gb.find_comment("a1", "ps1", "ps1", student).manual_comment = "Bien vu"
        gb.db.commit()


@pytest.fixture(scope="module")
def gradebooks(tmp_path_factory) -> dict[str, Path]:
    """Both courses' gradebooks, made once: a new gradebook runs alembic in a subprocess (seconds)."""
    folder = tmp_path_factory.mktemp("gradebooks")
    books = {SHORT: folder / f"{SHORT}.db", ALGO: folder / f"{ALGO}.db"}
    make_gradebook(books[SHORT], SHORT, TINA, 1.5)
    make_gradebook(books[ALGO], ALGO, ANN, 2.0)
    return books


def make_hub_database(data, *names):
    """The hub's own database, as JupyterHub and NativeAuthenticator make it."""
    import nativeauthenticator.orm  # noqa: F401 (registers users_info with the hub's tables)
    from jupyterhub import orm
    from nativeauthenticator.orm import UserInfo

    db = orm.new_session_factory(f"sqlite:///{data / 'jupyterhub.sqlite'}")()
    for name in names:
        user = orm.User(name=name, last_activity=dt.datetime(2026, 11, 3, 9, 0))
        db.add(user)
        db.commit()
        # as APIToken.new stores one, without the hub's OAuth client and roles this database lacks
        token = orm.APIToken(generated=True, note="my notebook", scopes=["access:servers!user"], user=user)
        db.add(token)
        token.token = secrets.token_hex(16)
        db.add(
            UserInfo(
                username=name, password=bcrypt.hashpw(b"secret-pw-1", bcrypt.gensalt(4)), is_authorized=True
            )
        )
    db.commit()
    db.close()


@pytest.fixture
def world(write_catalogue, tmp_path, gradebooks):
    """A site where TINA and ANN have each kind of data, and pd-other too (never touched)."""

    def build(algo_keeps=None):
        site = {**SITE, "authentication": {**SITE["authentication"], "demo_accounts": True}}
        site_file = write_catalogue(site=site, courses=courses(algo_keeps))
        data = tmp_path / "data"
        write_cohort(data, SHORT, TINA, "pd-other")
        roster.write_groups(data, "oidc", {"m2-ia": [TINA, "pd-other"]})
        catalogue = load_catalogue(site_file)
        where = places(catalogue)
        for name in (TINA, ANN, "pd-other"):
            home = where.home(name)
            (home / "notes").mkdir(parents=True)
            (home / "notes" / "carnet.ipynb").write_bytes(NOTEBOOK)
            (home / "lisez-moi.txt").write_text(f"à moi, {name}\n", encoding="utf-8")
            os.symlink("/etc/passwd", home / "a-link")
        store = ExchangeStore(where.exchange_root)
        for slug in (SHORT, ALGO):
            store.release(slug, "ps1", {"ps1.ipynb": NOTEBOOK}, by="pd-prof", now=NOW)
        for slug, name in ((SHORT, TINA), (SHORT, "pd-other"), (ALGO, ANN)):
            sub = store.submit(
                slug, "ps1", name, {"ps1.ipynb": NOTEBOOK}, LIMITS, now=NOW - dt.timedelta(days=29)
            )
            store.release_feedback(
                slug, "ps1", name, sub["timestamp"], {"ps1.html": b"<p>ok</p>"}, "pd-prof", NOW
            )
            copy = where.grading_root / slug / "autograded" / name / "ps1"
            copy.mkdir(parents=True)
            (copy / "ps1.ipynb").write_bytes(NOTEBOOK)
        for slug, book in gradebooks.items():  # where grading/courses.py gradebook_url puts them
            shutil.copyfile(book, where.grading_root / slug / "gradebook.db")
        make_hub_database(data, TINA, ANN, "pd-other")
        for name in (TINA, ANN, "pd-other"):
            record_login(data, name, "local", now=NOW - dt.timedelta(days=30))
        (data / "secrets").mkdir(mode=0o700)
        (data / "secrets" / "demo-logins.txt").write_text(f"{TINA} pw-tina\npd-other pw-other\n")
        return catalogue

    return build


def test_export_holds_each_item_and_says_what_is_not_there(world, tmp_path):
    catalogue = world()
    out = tmp_path / "tina.zip"
    export(catalogue, TINA, out, now=NOW)
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    with zipfile.ZipFile(out) as z:
        names = set(z.namelist())
        read = lambda n: z.read(n).decode()  # noqa: E731
        assert read("home/lisez-moi.txt") == f"à moi, {TINA}\n"
        assert "home/notes/carnet.ipynb" in names
        assert "home/a-link" not in names  # a link is never followed
        [sub] = [
            n for n in names if n.startswith(f"exchange/{SHORT}/submissions/ps1/") and n.endswith("ps1.ipynb")
        ]
        assert json.loads(read(sub))["nbformat"] == 4
        assert any(n.startswith(f"exchange/{SHORT}/feedback/ps1/") and n.endswith("ps1.html") for n in names)
        assert f"grading/{SHORT}/autograded/ps1/ps1.ipynb" in names
        grades = json.loads(read(f"grades/{SHORT}.json"))
        assert grades["student"]["email"] == f"{TINA}@example.fr"
        [ps1] = grades["submissions"]
        assert (ps1["name"], ps1["score"], ps1["max_score"]) == ("ps1", 1.5, 2.0)
        assert ps1["notebooks"][0]["comments"][0]["manual_comment"] == "Bien vu"
        assert (
            read(f"grades/{SHORT}.csv").splitlines()[1].startswith(f"{SHORT},ps1,2026-11-03T10:00:00,1.5,2.0")
        )
        account = json.loads(read("hub/account.json"))
        assert account["last_activity"] == "2026-11-03T09:00:00+00:00"
        assert [t["note"] for t in account["api_tokens"]] == ["my notebook"]
        assert "bcrypt hash is held" in account["local_account"]["password"]
        assert "$2b$" not in z.read("hub/account.json").decode()  # the hash itself never leaves
        [record] = json.loads(read(f"cohorts/{SHORT}.json"))["trainees"]
        assert record["company"] == "Acme" and record["invitation"]["sha256"] == "held (a hash), not exported"
        assert json.loads(read("rosters.json")) == {"oidc": ["m2-ia"]}
        assert [r["method"] for r in map(json.loads, read("logins.jsonl").splitlines())] == ["local"]
        readme = read("README.txt")
        everything = "\n".join(z.read(n).decode(errors="replace") for n in names)
    assert "pd-other" not in everything and ANN not in everything  # nothing of anyone else
    for line in ("home/", "grades/<course>.csv", "hub/account.json", "logins.jsonl", "cohorts/<course>.json"):
        assert line in readme
    assert "only a bcrypt hash of it is held" in readme
    assert "home/a-link: a link, not included" in readme
    assert "archived 30d after their courses' access ends, and the archive deleted 365d later" in readme


def test_export_of_someone_unknown_says_nothing_is_held(world, tmp_path):
    catalogue = world()
    export(catalogue, "pd-nobody", tmp_path / "n.zip", now=NOW)
    with zipfile.ZipFile(tmp_path / "n.zip") as z:
        assert z.namelist() == ["README.txt"]
        assert "the platform holds no data under this name" in z.read("README.txt").decode()


def test_forget_removes_each_item_and_reports_it(world):
    catalogue = world()
    where = places(catalogue)
    report = forget(catalogue, TINA, hub=None)  # the hub is stopped: its database changes directly
    text = "\n".join(report.lines())
    for what in (
        f"removed: cohort record in {where.cohorts / (SHORT + '.json')}",
        "removed: oidc group memberships recorded: m2-ia",
        "removed: demo password",
        f"removed: hub user {TINA}: account, groups, roles, 0 server records, 1 API tokens",
        f"removed: local account of {TINA}: password hash",
        f"removed: home {where.home(TINA)} (3 files)",
        f"removed: exchange/{SHORT}/submissions/ps1: 2 files",
        f"removed: exchange/{SHORT}/feedback/ps1: 2 files",
        f"removed: grading/{SHORT}/autograded: 1 files",
        f"removed: grades in {SHORT}'s gradebook (1 submissions)",
        f"removed: log-in records {where.logins_file(TINA)}",
    ):
        assert what in text, f"{what!r} not in:\n{text}"
    assert not where.home(TINA).exists() and not where.logins_file(TINA).exists()
    assert where.exchange_folders(TINA) == [] and where.nbgrader_folders(TINA) == []
    assert hub_record(where, TINA) is None
    assert TINA not in load_catalogue(catalogue.site_file).people()  # no course sync brings them back
    assert TINA not in (where.demo_logins.read_text())
    assert json.loads((where.rosters / "oidc.json").read_text()) == {"m2-ia": ["pd-other"]}
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(f"sqlite:///{where.grading_root / SHORT / 'gradebook.db'}", SHORT) as gb:
        with pytest.raises(MissingEntry):
            gb.find_student(TINA)
        assert gb.find_submission("ps1", "pd-other").score == 0  # the others' are untouched
    # and everything of pd-other is still there
    assert where.home("pd-other").is_dir() and hub_record(where, "pd-other")["local_account"]
    assert len(where.exchange_folders("pd-other")) == 2 and where.logins_file("pd-other").is_file()
    assert forget(catalogue, TINA).lines()[0] == f"nothing held on {TINA} was found"  # done once, whole


def test_forget_keeps_grades_of_an_academic_course_and_says_why(world):
    catalogue = world()
    report = forget(catalogue, ANN, hub=None)
    assert (
        f"kept: grades in {ALGO}'s gradebook (1 submissions): an academic course's default" in report.lines()
    )
    # ANN is listed in course.yaml (git): said, since the course sync would give an account again
    assert any(
        line.startswith("left: still named in") and "course.yaml: learners" in line for line in report.lines()
    )
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{places(catalogue).grading_root / ALGO / 'gradebook.db'}", ALGO) as gb:
        assert gb.find_submission("ps1", ANN).score == 2.0
    assert not places(catalogue).home(ANN).exists()


def test_a_course_rule_removes_academic_grades_too(world):
    catalogue = world(algo_keeps=False)
    lines = forget(catalogue, ANN, hub=None).lines()
    assert f"removed: grades in {ALGO}'s gradebook (1 submissions)" in lines


@pytest.mark.parametrize(
    ("kind", "rule", "kept"),
    [("academic", None, True), ("short-course", None, False), ("project-team", None, False),
     ("short-course", True, True), ("academic", False, False)],
)  # fmt: skip
def test_keeps_grades_by_rule_then_kind(kind, rule, kept):
    c = Course.model_validate(course(kind=kind, grades={} if rule is None else {"keep_after_forget": rule}))
    assert keeps_grades(c) is kept


def _archive_members(path) -> dict[str, tarfile.TarInfo]:
    with open(path, "rb") as f:
        data = zstandard.ZstdDecompressor().stream_reader(f).read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def test_retention_archives_after_the_delay_then_deletes_the_archive(world):
    catalogue = world()
    where = places(catalogue)
    closed = dt.datetime(2026, 11, 10, 23, 0, tzinfo=UTC)  # 2026-11-11 00:00 in Paris
    # Not yet: 30 days after the window closed, less a minute
    assert run_retention(catalogue, now=closed + dt.timedelta(days=30, minutes=-1)).lines() == []
    due = closed + dt.timedelta(days=30)
    dry = run_retention(catalogue, now=due, dry_run=True)
    assert [line.split(" (")[0] for line in dry.lines()] == [
        "would archive pd-other",
        f"would archive {TINA}",
    ]
    assert where.home(TINA).is_dir() and not where.archives.exists()  # a dry run changes nothing

    run = run_retention(catalogue, now=due)
    archive = where.archives / f"{TINA}-2026-12-10.tar.zst"
    assert run.lines()[1].startswith(  # the time as the site reads it: Paris
        f"archive {TINA} (access closed 2026-11-11 00:00 CET): home, exchange/{SHORT}/submissions/ps1, "
    )
    assert (
        stat.S_IMODE(archive.stat().st_mode) == 0o600 and stat.S_IMODE(where.archives.stat().st_mode) == 0o700
    )
    members = _archive_members(archive)
    assert "home/lisez-moi.txt" in members and members["home/a-link"].issym()
    assert any(
        n.startswith("exchange/pd-short/submissions/ps1/") and n.endswith("submission.json") for n in members
    )
    assert any(n.startswith("exchange/pd-short/feedback/ps1/") for n in members)
    assert f"grading/{SHORT}/autograded/ps1/ps1.ipynb" in members
    assert not where.home(TINA).exists() and where.exchange_folders(TINA) == []
    # the academic learner is not a trainee: nothing of theirs moves
    assert where.home(ANN).is_dir() and len(where.exchange_folders(ANN)) == 2
    # the archive is theirs: export packs it, forget removes it
    assert where.archives_of(TINA) == [archive]
    assert run_retention(catalogue, now=due).lines() == []  # nothing left to archive

    keep = dt.timedelta(days=365)
    made = dt.datetime(2026, 12, 10, tzinfo=UTC)
    assert run_retention(catalogue, now=made + keep - dt.timedelta(seconds=1)).deleted == []
    assert run_retention(catalogue, now=made + keep).lines() == [
        f"delete {where.archives / 'pd-other-2026-12-10.tar.zst'}",
        f"delete {archive}",
    ]
    assert not archive.exists()


def test_retention_delays_come_from_the_site(write_catalogue, tmp_path):
    site = {**SITE, "retention": {"archive_after": "1d", "delete_after": "2d"}}
    data = tmp_path / "data"
    write_cohort(data, SHORT, TINA)
    catalogue = load_catalogue(write_catalogue(site=site, courses={SHORT: courses()[SHORT]}))
    places(catalogue).home(TINA).mkdir(parents=True)
    closed = dt.datetime(2026, 11, 10, 23, 0, tzinfo=UTC)
    assert run_retention(catalogue, now=closed + dt.timedelta(hours=23)).archived == []
    [(archival, path)] = run_retention(catalogue, now=closed + dt.timedelta(days=1)).archived
    assert path.name == f"{TINA}-2026-11-11.tar.zst"
    assert run_retention(catalogue, now=dt.datetime(2026, 11, 13, tzinfo=UTC)).deleted == [path]


def test_login_records_are_appended_with_time_and_method_only(tmp_path):
    path = record_login(tmp_path, TINA, "ldap", now=dt.datetime(2026, 11, 2, 9, 30, tzinfo=UTC))
    record_login(tmp_path, TINA, "local", now=dt.datetime(2026, 11, 3, 9, 30, tzinfo=UTC))
    assert read_logins(path) == [
        {"time": "2026-11-02T09:30:00+00:00", "method": "ldap"},
        {"time": "2026-11-03T09:30:00+00:00", "method": "local"},
    ]
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    with pytest.raises(ValueError, match="is not a person's username"):
        record_login(tmp_path, "../etc", "local")


def test_login_method_is_that_of_the_authenticator_below_ours():
    from hub_config.login.local import LocalLogin

    assert login_method(LocalLogin.__new__(LocalLogin)) == "local"


@pytest.mark.parametrize("bad", ["../x", "root", "Tina", "a/b", ""])
def test_a_bad_name_is_refused_with_the_reason(bad):
    with pytest.raises(ValueError, match="is not a person's username"):
        check_person(bad)


def test_cli_forget_asks_first_and_a_no_changes_nothing(world):
    from click.testing import CliRunner

    from hub_config.cli import main

    catalogue = world()
    site = str(catalogue.site_file)
    said = CliRunner().invoke(main, ["person", "forget", TINA, "--site", site], input="n\n")
    assert said.exit_code == 1 and "Aborted" in said.output
    assert f"This removes, for good, what the platform holds on {TINA}:" in said.output
    assert f"  home {places(catalogue).home(TINA)} (3 files)" in said.output
    assert places(catalogue).home(TINA).is_dir() and hub_record(places(catalogue), TINA)


def test_cli_refuses_a_bad_name_and_runs_retention_dry(world):
    from click.testing import CliRunner

    from hub_config.cli import main

    site = str(world().site_file)
    bad = CliRunner().invoke(main, ["person", "export", "../etc", "--site", site])
    assert bad.exit_code == 2 and "'../etc' is not a person's username" in bad.output
    dry = CliRunner().invoke(main, ["retention", "run", "--dry-run", "--site", site])
    assert dry.exit_code == 0, dry.output
    due = dt.datetime(2026, 11, 10, 23, 0, tzinfo=UTC) + dt.timedelta(days=30)  # the windows closed, +30d
    now = dt.datetime.now(UTC)
    assert dry.output.startswith("would archive pd-other" if now >= due else "nothing to archive or delete")
    assert places(load_catalogue(site)).home(TINA).is_dir()


def test_the_course_sync_applies_retention_each_period(write_catalogue, tmp_path, capsys):
    from hub_config.sync import retention

    site = {**SITE, "retention": {"archive_after": "1d"}}
    write_cohort(tmp_path / "data", SHORT, TINA)
    catalogue = load_catalogue(write_catalogue(site=site, courses={SHORT: courses()[SHORT]}))
    places(catalogue).home(TINA).mkdir(parents=True)
    retention(catalogue)  # the course ended 2026-11-03: its window closed more than a day ago
    assert capsys.readouterr().out.startswith(f"course-sync: retention: archive {TINA} (access closed")
    assert places(catalogue).archives_of(TINA) and not places(catalogue).home(TINA).exists()


def test_the_language_a_person_chose_is_exported_and_forgotten_with_them(world):
    from sqlalchemy import create_engine
    from sqlalchemy.orm import Session

    from hub_config import hub_language

    catalogue = world()
    where = places(catalogue)
    with Session(create_engine(where.database_url)) as db:
        hub_language.keep(db, TINA, "en")
        hub_language.keep(db, "pd-other", "fr")
    assert hub_record(where, TINA)["language"] == "en"
    text = "\n".join(forget(catalogue, TINA, hub=None).lines())
    assert f"removed: the language {TINA} chose for the pages (en, hub database)" in text
    with Session(create_engine(where.database_url)) as db:
        assert hub_language.kept_if_any(db, TINA) is None
        assert hub_language.kept_if_any(db, "pd-other") == "fr"  # another's choice stays
