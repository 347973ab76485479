"""A course's gradebook on a real PostgreSQL server (formgraders.database_url with {course})."""

from __future__ import annotations

import json

import pytest
import yaml

from grading.courses import gradebook_url, prepare_course
from grading.export import gather, to_csv
from hub_config.catalogue import load_catalogue
from tests.conftest import need
from tests.services import postgres as pg
from tests.services.hub import course

pytestmark = pytest.mark.postgres


@pytest.fixture
def server(output_dir):
    need(pg.missing() is None, pg.missing() or "")
    with pg.PostgresServer(
        database="nbgrader_fg_pg", user="grader", log=output_dir / "postgres.log"
    ) as running:
        yield running


def test_the_gradebook_lives_in_the_courses_own_postgresql_database(server, tmp_path):
    (tmp_path / "courses" / "fg-pg").mkdir(parents=True)
    model = course(
        "fg-pg",
        ["fg-prof-pg"],
        ["fg-pia", "fg-quentin"],
        assignments=[{"name": "ps1", "due": "2026-10-01T12:00:00+00:00"}],
    )
    (tmp_path / "courses" / "fg-pg" / "course.yaml").write_text(yaml.safe_dump(model))
    template = server.url.rsplit("/", 1)[0] + "/nbgrader_{course}"
    site = {
        "name": "fg-pg-site",
        "data_dir": "data",
        "courses_dir": "courses",
        "formgraders": {"database_url": template},
    }
    (tmp_path / "fg-pg-site.yaml").write_text(yaml.safe_dump(site))
    cat = load_catalogue(tmp_path / "fg-pg-site.yaml")
    cat.data_dir.mkdir(mode=0o711)

    assert gradebook_url(cat, cat.course("fg-pg")) == server.url
    root = prepare_course(cat, cat.course("fg-pg"))
    assert not (root / "gradebook.db").exists()  # nothing in SQLite
    assert server.sql("SELECT name, duedate::text FROM assignment") == [("ps1", "2026-10-01 12:00:00")]
    assert sorted(server.sql("SELECT id FROM student")) == [("fg-pia",), ("fg-quentin",)]
    assert json.loads((root / "nbgrader_config.json").read_text())["CourseDirectory"]["db_url"] == server.url
    # the export reads it: every learner, nothing graded yet
    csv_text = to_csv(cat.course("fg-pg"), gather(cat, cat.course("fg-pg")))
    assert csv_text.splitlines() == [
        "Username,Email address,ps1,Total,Notes",
        "fg-pia,,,0,",
        "fg-quentin,,,0,",
    ]
