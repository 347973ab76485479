"""`ailys usage` (footprint/usage.py) on recorded rows: sessions, learner-hours, active learners
per week and spawn failures per course; and the command on a hub database file."""

import csv
import datetime as dt
import io
import json

from click.testing import CliRunner

from footprint.records import Footprint, connect, store
from footprint.spawn_failures import SpawnFailure, record_spawn_failure
from footprint.usage import as_csv, as_png, usage
from hub_config.appliers.storage import database_url
from hub_config.catalogue import load_catalogue
from hub_config.cli import main
from tests.unit.conftest import course

MON = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)  # a Monday, ISO week 2026-W45


def session(who, course, start, hours, kind="local", ref=None):
    return Footprint(
        kind=kind,
        ref=ref or f"{who}@{start.isoformat()}",
        who=who,
        course=course,
        partition=None,
        start=start,
        end=start + dt.timedelta(hours=hours),
        core_hours=hours,
        core_usage=0.5,
        memory_gb_hours=hours,
        gpu_hours=0.0,
        energy_wh=1.0,
        energy_wh_low=0.5,
        energy_wh_high=2.0,
        co2_g=0.1,
        co2_g_low=0.05,
        co2_g_high=0.2,
        method="estimate",
    )


ROWS = [
    session("ana", "algo", MON, 2.0),
    session("ana", "algo", MON + dt.timedelta(days=1), 1.5),
    session("ben", "algo", MON + dt.timedelta(days=2), 0.5, kind="slurm"),
    session("prof", "algo", MON, 3.0),  # an instructor: a session, not learner-hours
    session("ana", "algo", MON + dt.timedelta(days=7), 1.0),  # the next week
    session("cleo", "stats", MON, 4.0, kind="docker"),
    session("ana", "algo", MON, 9.0, kind="autograde"),  # grading, not a session
]
FAILURES = [SpawnFailure("ben", "algo", "slurm", MON + dt.timedelta(days=7), "timeout")]
LEARNERS = {"algo": {"ana", "ben"}, "stats": {"cleo"}}


def test_usage_per_course_and_week():
    algo, stats = usage(ROWS, FAILURES, LEARNERS)
    assert (algo.course, algo.sessions, algo.learner_hours, algo.active_learners, algo.spawn_failures) == (
        "algo",
        5,
        5.0,
        2,
        1,
    )
    w45, w46 = algo.weeks
    assert (w45.week, w45.sessions, w45.learner_hours, w45.active_learners, w45.spawn_failures) == (
        "2026-W45",
        4,
        4.0,
        2,
        0,
    )
    assert (w46.week, w46.sessions, w46.active_learners, w46.spawn_failures) == ("2026-W46", 1, 1, 1)
    assert (stats.sessions, stats.learner_hours, stats.active_learners) == (1, 4.0, 1)
    # without the course files, everyone's session counts as a learner's
    assert usage(ROWS)[0].learner_hours == 8.0


def test_csv_has_a_line_per_week_and_a_total_and_the_png_is_an_image():
    lines = list(csv.DictReader(io.StringIO(as_csv(usage(ROWS, FAILURES, LEARNERS)))))
    assert [(r["course"], r["week"]) for r in lines] == [
        ("algo", "2026-W45"),
        ("algo", "2026-W46"),
        ("algo", "all"),
        ("stats", "2026-W45"),
        ("stats", "all"),
    ]
    assert lines[2]["learner_hours"] == "5.0" and lines[2]["spawn_failures"] == "1"
    png = as_png(usage(ROWS, FAILURES, LEARNERS))
    assert png.startswith(b"\x89PNG") and len(png) > 10_000
    assert as_png([]).startswith(b"\x89PNG")  # nothing recorded yet: an empty plot, not a crash


def test_the_command_reads_the_hub_database(write_catalogue, tmp_path):
    site = write_catalogue(courses={"algo": course()})  # learners ana and ben, instructor prof
    catalogue = load_catalogue(site)
    catalogue.data_dir.mkdir()
    url = database_url(catalogue)
    engine = connect(url)
    store(engine, ROWS)
    engine.dispose()
    record_spawn_failure(url, FAILURES[0])
    runner = CliRunner()
    done = runner.invoke(main, ["usage", "--site", str(site), "--course", "algo", "--format", "json"])
    assert done.exit_code == 0, done.output
    [algo] = json.loads(done.output)["courses"]
    assert (algo["sessions"], algo["learner_hours"], algo["active_learners"], algo["spawn_failures"]) == (
        5,
        5.0,
        2,
        1,
    )
    since = runner.invoke(main, ["usage", "--site", str(site), "--since", "2026-11-09", "--format", "csv"])
    assert since.exit_code == 0 and "2026-W45" not in since.output and "algo,2026-W46" in since.output
    out = tmp_path / "usage.png"
    png = runner.invoke(main, ["usage", "--site", str(site), "--format", "png", "--out", str(out)])
    assert png.exit_code == 0 and out.read_bytes().startswith(b"\x89PNG")
    bad = runner.invoke(main, ["usage", "--site", str(site), "--format", "png"])
    assert bad.exit_code != 0 and "--format png needs --out FILE" in bad.output
