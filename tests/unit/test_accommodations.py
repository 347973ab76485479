"""Accommodations (grading/accommodations.py): the deadline each gives, what is refused and why,
the course folder's file, nbgrader's own gradebook (a real SQLite one, made by nbgrader) and the
grade export's late flags, `ailys accommodation`, and `ailys person export/forget`."""

from __future__ import annotations

import datetime as dt
import json
import stat
import zipfile

import pytest
from click.testing import CliRunner

from grading import accommodations as acc
from grading.courses import course_dir, prepare_course
from grading.export import gather
from hub_config.catalogue import load_catalogue
from hub_config.cli import main
from hub_config.personal_data import export, forget

from .conftest import course
from .test_personal_data import make_hub_database

UTC = dt.UTC
OPENS = dt.datetime(2026, 12, 3, 9, 0, tzinfo=UTC)
DUE = dt.datetime(2026, 12, 3, 10, 0, tzinfo=UTC)  # a one-hour exam
ASSIGNMENTS = [
    {"name": "exam", "opens": OPENS.isoformat(), "due": DUE.isoformat()},
    {"name": "tp1", "due": "2026-12-10T18:00:00+01:00"},  # homework: no window
]


@pytest.mark.parametrize(
    ("extra", "extension", "due"),
    [
        (None, None, DUE),
        ("33%", None, DUE + dt.timedelta(minutes=19, seconds=48)),  # a third of the hour
        ("50%", "1h", DUE + dt.timedelta(minutes=90)),
        ("30m", None, DUE + dt.timedelta(minutes=30)),
        ("00:45:00", "2d", DUE + dt.timedelta(days=2, minutes=45)),  # Slurm's form
        (None, "1-12:00", DUE + dt.timedelta(hours=36)),
    ],
)
def test_the_deadline_adds_extra_time_then_the_extension(extra, extension, due):
    assert acc.effective_due(DUE, OPENS, extra, extension) == due


def test_a_percentage_needs_a_window_and_a_deadline_without_zone_is_utc():
    naive = dt.datetime(2026, 12, 3, 10, 0)
    assert acc.effective_due(naive, None, "33%") == DUE  # no opens: a share of nothing
    assert acc.effective_due(naive, None, "30m") == DUE + dt.timedelta(minutes=30)
    assert acc.effective_due(None, OPENS, "30m", "2d") is None  # no deadline, none to move


@pytest.mark.parametrize(
    ("kind", "text", "message"),
    [
        ("extra_time", "-30m", "extra_time: '-30m' is negative"),
        ("extra_time", "-10%", "extra_time: '-10%' is negative"),
        ("extra_time", "0%", "outside 0% to 200%"),
        ("extra_time", "500%", "extra_time: 500% is outside 0% to 200%"),
        ("extra_time", "33 percent", "extra_time: '33 percent' is neither a percentage .such as 33%. nor a"),
        ("extra_time", "%33", "is not a percentage"),
        ("extra_time", "30", "extra_time: 30 has no unit"),
        ("extra_time", "half an hour", "extra_time: 'half an hour' is neither a percentage"),
        ("extra_time", "0s", "extra_time: '0s' is no time at all"),
        ("extra_time", "30d", "extra_time: '30d' is more than 7d: surely a typo"),
        ("extension", "-2d", "extension: '-2d' is negative"),
        ("extension", "2 days", "extension: '2 days' is not a duration"),
        ("extension", "400d", "extension: '400d' is more than 180d"),
    ],
)
def test_bad_extra_time_and_extensions_are_refused_naming_the_field(kind, text, message):
    parse = acc.parse_extra_time if kind == "extra_time" else acc.parse_extension
    with pytest.raises(acc.AccommodationError, match=message):
        parse(text)


@pytest.fixture
def site(write_catalogue, tmp_path):
    def build(**over):
        algo = course(**{"assignments": ASSIGNMENTS, "learners": ["ana", "ben"], **over})
        stats = course("stats", instructors=["prof2"], learners=["cleo"], assignments=ASSIGNMENTS)
        return load_catalogue(write_catalogue(courses={"algo": algo, "stats": stats}))

    return build


def test_the_file_is_the_course_folders_own_and_refuses_unknown_names(site):
    cat = site()
    algo, folder = cat.course("algo"), course_dir(cat, "algo")
    learners = cat.learners(algo)
    record = acc.set_accommodation(folder, algo, learners, "ana", extra_time="33%", by="prof")
    assert record["extra_time"] == "33%" and record["by"] == "prof"
    acc.set_accommodation(folder, algo, learners, "ana", assignment="tp1", extension="2d", by="prof")
    path = folder / acc.FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600 and stat.S_IMODE(folder.stat().st_mode) == 0o700
    data = json.loads(path.read_text())
    assert data["learners"]["ana"]["extra_time"] == "33%"
    assert data["learners"]["ana"]["extensions"] == {"tp1": "2d"}
    # seconds after due, as nbgrader's gradebook keeps them: 33% of the exam's hour; tp1 2 days
    assert data["extensions"] == {"ana": {"exam": 1188, "tp1": 172800}}
    for kwargs, message in [
        ({"learner": "cleo", "extra_time": "33%"}, "learner: 'cleo' is not a learner of course algo"),
        (
            {"learner": "ana", "assignment": "tp9", "extension": "1d"},
            "assignment: 'tp9' is not an assignment of course algo (its assignments: exam, tp1)",
        ),
        ({"learner": "ana", "extension": "1d"}, "extension: an extension is for one assignment"),
        ({"learner": "ana"}, "extra_time: give extra time, or an assignment's extension, or both"),
        ({"learner": "ben", "extra_time": "1000%"}, "extra_time: 1000% is outside"),
    ]:
        with pytest.raises(acc.AccommodationError, match=message.replace("(", r"\(").replace(")", r"\)")):
            acc.set_accommodation(folder, algo, learners, by="prof", **kwargs)
    assert json.loads(path.read_text()) == data  # nothing written by a refusal
    assert acc.remove(folder, algo, "ana", "tp1") and not acc.remove(folder, algo, "ana", "tp1")
    assert acc.records(folder)["ana"]["extensions"] == {}
    assert acc.remove(folder, algo, "ana") and acc.records(folder) == {}
    assert not acc.remove(folder, algo, "ben")


def test_the_gradebook_gets_nbgraders_extension_and_the_export_follows_it(site):
    """Two learners submit 20 min after a 1 h exam's due: ana has +33% (19 min 48 s: still late by
    12 s, so a 1 min grace), ben has nothing; a change of course.yaml reaches the gradebook."""
    from nbgrader.api import Gradebook

    cat = site(grades={"late": {"action": "flag", "grace": "1m"}})
    algo = cat.course("algo")
    cat.data_dir.mkdir()
    root = prepare_course(cat, algo)
    acc.set_accommodation(root, algo, cat.learners(algo), "ana", extra_time="33%", by="prof")
    at = (DUE + dt.timedelta(minutes=20)).replace(tzinfo=None)
    url = f"sqlite:///{root / 'gradebook.db'}"
    with Gradebook(url, "algo") as gb:
        for who in ("ana", "ben"):
            gb.add_submission("exam", who, timestamp=at)
        assert acc.sync_gradebook(gb, root) == 1
        ana, ben = gb.find_submission("exam", "ana"), gb.find_submission("exam", "ben")
        # nbgrader's own reading: formgrader shows this deadline, its late penalties use it
        assert ana.duedate == (DUE + dt.timedelta(seconds=1188)).replace(tzinfo=None)
        assert ana.total_seconds_late == 12 and ben.total_seconds_late == 1200
    rows = {r.username: r.grades["exam"] for r in gather(cat, algo)}
    assert (rows["ana"].late, rows["ben"].late, rows["ben"].late_by_seconds) == (False, True, 1200)
    # an instructor moves the exam's opening earlier: 33% of 2 h at the next start
    yaml_file = cat.courses_dir / "algo" / "course.yaml"
    yaml_file.write_text(
        yaml_file.read_text().replace("2026-12-03T09:00:00+00:00", "2026-12-03T08:00:00+00:00")
    )
    later = load_catalogue(cat.site_file)
    assert later.course("algo").assignments[0].opens.hour == 8
    prepare_course(later, later.course("algo"))
    with Gradebook(url, "algo") as gb:
        assert gb.find_submission("exam", "ana").extension == dt.timedelta(seconds=2376)
    acc.remove(root, algo, "ana")
    acc.sync_gradebook(Gradebook(url, "algo"), root)
    with Gradebook(url, "algo") as gb:
        assert gb.find_submission("exam", "ana").extension is None


def run(*args):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_the_admin_command_sets_lists_and_removes_with_clear_errors(site, monkeypatch):
    cat = site()
    monkeypatch.chdir(cat.site_file.parent)
    site_arg = ["--site", str(cat.site_file)]
    done = run("accommodation", "set", "algo", "ana", "--extra-time", "33%", *site_arg)
    assert done.exit_code == 0, done.output
    assert "exam: due 2026-12-03T10:19:48+00:00" in done.output
    assert "tp1: due 2026-12-10T18:00:00+01:00 (no opens in course.yaml" in done.output
    done = run("accommodation", "set", "algo", "ana", "--assignment", "tp1", "--extension", "2d", *site_arg)
    assert "tp1: due 2026-12-12T18:00:00+01:00" in done.output
    listed = run("accommodation", "list", "algo", *site_arg).output
    assert listed.startswith("ana: extra time 33%; extensions tp1 +2d\n")
    assert run("accommodation", "list", "stats", *site_arg).output == "no accommodations in stats\n"
    bad = run("accommodation", "set", "algo", "ana", "--extra-time", "-5m", *site_arg)
    assert bad.exit_code == 2 and "extra_time: '-5m' is negative" in bad.output
    bad = run("accommodation", "set", "algo", "zed", "--extra-time", "5m", *site_arg)
    assert bad.exit_code == 2 and "learner: 'zed' is not a learner of course algo" in bad.output
    bad = run("accommodation", "set", "nope", "ana", "--extra-time", "5m", *site_arg)
    assert bad.exit_code == 2 and "nope" in bad.output
    done = run("accommodation", "remove", "algo", "ana", "--assignment", "tp1", *site_arg)
    assert done.exit_code == 0 and "removed the extension of tp1 of ana in algo" in done.output
    again = run("accommodation", "remove", "algo", "ana", "--assignment", "tp1", *site_arg)
    assert again.exit_code == 1 and "ana has no extension on tp1 in algo" in again.output


def test_a_persons_export_holds_their_accommodations_and_forget_erases_only_theirs(site, tmp_path):
    cat = site()
    cat.data_dir.mkdir()
    make_hub_database(cat.data_dir, "ana", "ben")  # the hub's own records, which forget also reads
    algo, folder = cat.course("algo"), course_dir(cat, "algo")
    for who in ("ana", "ben"):
        acc.set_accommodation(folder, algo, cat.learners(algo), who, extra_time="30m", by="prof")
    export(cat, "ana", tmp_path / "ana.zip")
    with zipfile.ZipFile(tmp_path / "ana.zip") as z:
        record = json.loads(z.read("accommodations/algo.json"))
        assert record["extra_time"] == "30m" and record["extension_seconds"] == {"exam": 1800, "tp1": 1800}
        assert "accommodations/<course>.json" in z.read("README.txt").decode()
        assert "ben" not in z.read("accommodations/algo.json").decode()
    report = forget(cat, "ana")
    assert "removed: extra time and extensions in course algo" in report.lines()
    assert set(acc.records(folder)) == {"ben"} and "ana" not in acc.read(folder)["extensions"]


def test_a_backup_takes_them_and_a_restore_brings_them_back_private(tmp_path):
    from hub_config.backup import backup
    from hub_config.restore import restore

    from .test_backup import fill, make_site

    source = make_site(tmp_path / "a")
    fill(source)
    algo = source.course("algo")
    acc.set_accommodation(
        course_dir(source, "algo"), algo, source.learners(algo), "ana", extra_time="30m", by="p"
    )
    made = backup(source, tmp_path / "out")
    target = make_site(tmp_path / "b", "other")
    restore(target, made.path)
    back = course_dir(target, "algo") / acc.FILE
    assert acc.records(back.parent)["ana"]["extra_time"] == "30m"
    assert stat.S_IMODE(back.stat().st_mode) == 0o600


def test_an_opening_after_the_deadline_is_refused_in_course_yaml(write_catalogue):
    from hub_config.catalogue import CatalogueError

    late = [{"name": "exam", "opens": DUE.isoformat(), "due": OPENS.isoformat()}]
    with pytest.raises(CatalogueError) as err:
        load_catalogue(write_catalogue(courses={"algo": course(assignments=late)}))
    [problem] = err.value.problems
    assert problem.key == "assignments[0].opens" and "opens needs a due after it" in problem.reason, problem
