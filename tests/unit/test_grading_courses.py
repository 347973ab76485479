"""The course folder made from course.yaml and source/ alone (real SQLite gradebook)."""

import datetime as dt
import json
import os

from nbgrader.api import Gradebook

from grading.courses import copy_source, gradebook_url, prepare_course
from hub_config.catalogue import load_catalogue

from .conftest import course


def test_prepare_makes_a_closed_folder_with_the_source_and_the_gradebook(write_catalogue, tmp_path):
    cat = load_catalogue(
        write_catalogue(
            courses={
                "algo": course(
                    assignments=[{"name": "ps1", "due": "2026-10-01T12:00:00+02:00"}, {"name": "ps2"}]
                )
            }
        )
    )
    source = cat.courses_dir / "algo" / "source" / "ps1"
    source.mkdir(parents=True)
    (source / "ps1.ipynb").write_text("{}")
    (source / ".ipynb_checkpoints").mkdir()
    cat.data_dir.mkdir(mode=0o711)  # as the hub makes it before starting its services
    root = prepare_course(cat, cat.course("algo"))
    assert root == cat.data_dir / "grading" / "algo"
    assert root.stat().st_mode & 0o777 == 0o700 and (root / "gradebook.db").stat().st_mode & 0o777 == 0o600
    assert (root / "source" / "ps1" / "ps1.ipynb").read_text() == "{}"
    assert not (root / "source" / "ps1" / ".ipynb_checkpoints").exists()
    assert json.loads((root / "nbgrader_config.json").read_text())["CourseDirectory"]["course_id"] == "algo"
    with Gradebook(gradebook_url(cat, cat.course("algo")), "algo") as gb:
        assert gb.find_assignment("ps1").duedate == dt.datetime(2026, 10, 1, 10, 0)  # naive UTC
        assert gb.find_assignment("ps2").duedate is None
        assert sorted(s.id for s in gb.students) == ["ana", "ben"]
    # a second start keeps the gradebook and is idempotent
    prepare_course(cat, cat.course("algo"))
    with Gradebook(gradebook_url(cat, cat.course("algo")), "algo") as gb:
        assert len(gb.assignments) == 2


def test_copy_source_takes_new_and_newer_files_only(tmp_path):
    src, dest = tmp_path / "src", tmp_path / "dest"
    (src / "ps1").mkdir(parents=True)
    (src / "ps1" / "a.ipynb").write_text("v1")
    assert copy_source(src, dest) == ["ps1/a.ipynb"]
    assert copy_source(src, dest) == []  # unchanged
    (src / "ps1" / "a.ipynb").write_text("v2")
    later = (dest / "ps1" / "a.ipynb").stat().st_mtime + 10
    os.utime(src / "ps1" / "a.ipynb", (later, later))
    assert copy_source(src, dest) == ["ps1/a.ipynb"] and (dest / "ps1" / "a.ipynb").read_text() == "v2"


def test_the_course_folders_settings_are_json_that_nbgrader_loads(write_catalogue):
    """Data, not code: loaded as nbgrader loads its course folder's config, and as `ailys grade` does."""
    from traitlets.config import Application

    from grading.autograde.course import Course

    cat = load_catalogue(write_catalogue(courses={"algo": course(assignments=[{"name": "ps1"}])}))
    cat.data_dir.mkdir(mode=0o711)
    old = cat.data_dir / "grading" / "algo" / "nbgrader_config.py"  # as older versions wrote it
    old.parent.mkdir(parents=True)
    old.write_text("c = get_config()\nc.CourseDirectory.course_id = 'stale'\n")
    root = prepare_course(cat, cat.course("algo"))
    assert not old.exists() and (root / "nbgrader_config.json").is_file()
    app = Application()
    app.load_config_file("nbgrader_config.py", path=str(root))  # nbgrader's NbGrader.initialize
    assert app.config.CourseDirectory.course_id == "algo"
    assert app.config.ExchangeFactory.submit == "grading.exchange.client.ExchangeSubmit"
    assert app.config.HubExchange.path_includes_course is True
    nbcourse = Course(root)
    assert nbcourse.coursedir.course_id == "algo" and nbcourse.db_url == gradebook_url(
        cat, cat.course("algo")
    )
    assert nbcourse.config.Autograde.sanitize_preprocessors[0] == "grading.integrity.FlagTampering"
