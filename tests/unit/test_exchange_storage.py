"""The exchange's storage on a temporary folder: what is kept, what is refused, and that a
refused or repeated submission never loses an earlier one."""

import datetime as dt
import json
import stat

import nbformat
import pytest

from grading.exchange.storage import (
    ExchangeProblem,
    ExchangeStore,
    Limits,
    check_relpath,
    submission_problems,
)

T0 = dt.datetime(2026, 11, 21, 10, 0, tzinfo=dt.UTC)
LIMITS = Limits(max_file_size=10_000, max_total_size=15_000, max_files=5)


def notebook(text="x = 1") -> bytes:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(text, id="cell-1")])
    return nbformat.writes(nb).encode()


@pytest.fixture
def store(tmp_path):
    s = ExchangeStore(tmp_path / "exchange")
    s.release("algo", "ps1", {"ps1.ipynb": notebook(), "data/points.csv": b"1,2\n"}, "prof", T0)
    return s


def test_the_root_is_readable_by_its_owner_only(store):
    assert stat.S_IMODE(store.root.stat().st_mode) == 0o700


def test_release_lists_and_fetches_the_files(store):
    [meta] = store.released("algo")
    assert (
        meta["assignment_id"] == "ps1"
        and meta["notebooks"] == ["ps1.ipynb"]
        and meta["released_by"] == "prof"
    )
    assert store.released_files("algo", "ps1") == {"data/points.csv": b"1,2\n", "ps1.ipynb": notebook()}
    assert store.released("stats") == []


def test_release_again_needs_force_and_then_replaces_whole(store):
    with pytest.raises(ExchangeProblem, match="already released") as err:
        store.release("algo", "ps1", {"ps1.ipynb": notebook("y = 2")}, "prof", T0)
    assert err.value.status == 409
    store.release("algo", "ps1", {"ps1.ipynb": notebook("y = 2")}, "prof", T0, force=True)
    assert store.released_files("algo", "ps1") == {"ps1.ipynb": notebook("y = 2")}  # the old csv is gone
    assert not list((store.root / "algo" / ".tmp").iterdir())  # no staging left behind


def test_unrelease_hides_the_assignment_and_keeps_submissions(store):
    store.submit("algo", "ps1", "ana", {"ps1.ipynb": notebook()}, LIMITS, T0)
    store.unrelease("algo", "ps1")
    assert store.released("algo") == []
    with pytest.raises(ExchangeProblem, match="not released"):
        store.released_files("algo", "ps1")
    assert len(store.submissions("algo", "ps1", "ana")) == 1


def test_every_submission_is_kept_with_its_utc_timestamp(store):
    first = store.submit("algo", "ps1", "ana", {"ps1.ipynb": notebook("a = 1")}, LIMITS, T0)
    later = T0 + dt.timedelta(minutes=5)
    second = store.submit("algo", "ps1", "ana", {"ps1.ipynb": notebook("a = 2")}, LIMITS, later)
    assert first["timestamp"] == "2026-11-21 10:00:00.000000 UTC"  # nbgrader's format
    subs = store.submissions("algo", "ps1", "ana")
    assert [s["id"] for s in subs] == [first["id"], second["id"]]
    assert store.submission_files("algo", "ps1", "ana", first["id"]) == {"ps1.ipynb": notebook("a = 1")}
    assert store.submission_files("algo", "ps1", "ana", second["id"]) == {"ps1.ipynb": notebook("a = 2")}


def test_two_submissions_at_the_same_instant_both_stay(store):
    a = store.submit("algo", "ps1", "ana", {"ps1.ipynb": notebook("a = 1")}, LIMITS, T0)
    b = store.submit("algo", "ps1", "ana", {"ps1.ipynb": notebook("a = 2")}, LIMITS, T0)
    assert a["id"] != b["id"]
    assert len(store.submissions("algo", "ps1", "ana")) == 2


def test_late_submissions_are_flagged_from_the_deadline(store):
    due = T0 + dt.timedelta(hours=1)
    on_time = store.submit("algo", "ps1", "ana", {"ps1.ipynb": notebook()}, LIMITS, T0, due)
    late = store.submit(
        "algo", "ps1", "ben", {"ps1.ipynb": notebook()}, LIMITS, due + dt.timedelta(seconds=90), due
    )
    assert (on_time["late"], late["late"], late["seconds_late"]) == (False, True, 90.0)
    assert late["due"] == "2026-11-21T11:00:00+00:00"
    meta = json.loads(
        next((store.root / "algo" / "submissions" / "ps1" / "ben").glob("*/submission.json")).read_text()
    )
    assert meta["late"] is True  # on disk, for the grade export


@pytest.mark.parametrize(
    "files, expected",
    [
        (
            {"ps1.ipynb": b'{"cells": [}'},
            "ps1.ipynb: not a valid notebook: invalid JSON (Expecting value: line 1 column 12",
        ),
        ({"ps1.ipynb": b"{}"}, "ps1.ipynb: not a valid notebook: "),
        ({"other.ipynb": notebook()}, "ps1.ipynb: missing"),
        (
            {"ps1.ipynb": notebook(), "big.bin": b"0" * 10_001},
            "big.bin: 9.8K, over the course's limit of 9.8K a file",
        ),
        ({"ps1.ipynb": notebook(), "a.bin": b"0" * 9000, "b.bin": b"0" * 9000}, "all files: "),
        (
            {"ps1.ipynb": notebook(), **{f"f{i}": b"" for i in range(5)}},
            "6 files: more than the course's limit of 5",
        ),
    ],
)
def test_a_bad_submission_is_refused_naming_the_file_and_loses_nothing(store, files, expected):
    kept = store.submit("algo", "ps1", "ana", {"ps1.ipynb": notebook("kept")}, LIMITS, T0)
    with pytest.raises(ExchangeProblem) as err:
        store.submit("algo", "ps1", "ana", files, LIMITS, T0 + dt.timedelta(minutes=1))
    assert err.value.status == 422
    assert any(p.startswith(expected) for p in err.value.problems), err.value.problems
    assert expected in err.value.message and "nothing was stored" in err.value.message
    assert [s["id"] for s in store.submissions("algo", "ps1", "ana")] == [kept["id"]]
    assert store.submission_files("algo", "ps1", "ana", kept["id"]) == {"ps1.ipynb": notebook("kept")}


def test_every_problem_is_listed_at_once():
    problems = submission_problems(
        {"ps1.ipynb": b"[", "x.bin": b"0" * 20}, Limits(10, 100, 10), ["ps1.ipynb", "ps2.ipynb"]
    )
    assert [p.split(":")[0] for p in problems] == ["ps2.ipynb", "ps1.ipynb", "x.bin"]


def test_submitting_to_an_assignment_not_released_is_refused(store):
    with pytest.raises(ExchangeProblem, match="ps9 of algo is not released") as err:
        store.submit("algo", "ps9", "ana", {"ps9.ipynb": notebook()}, LIMITS, T0)
    assert err.value.status == 404


@pytest.mark.parametrize(
    "path", ["../x", "/etc/passwd", "a/../../b", "a\\b", "", "./a", "a//b", "/".join("d" * 11)]
)
def test_paths_that_could_leave_the_assignment_are_refused(path):
    with pytest.raises(ExchangeProblem, match="not a valid file path"):
        check_relpath(path)


@pytest.mark.parametrize("name", ["..", "../algo", "a/b", "*", ".hidden", ""])
def test_names_that_are_not_one_plain_path_component_are_refused(store, name):
    with pytest.raises(ExchangeProblem, match="not a valid name"):
        store.submissions("algo", learner=name)
    with pytest.raises(ExchangeProblem):
        store.released_files(name, "ps1")


def test_feedback_goes_to_the_submission_with_that_timestamp(store):
    first = store.submit("algo", "ps1", "ana", {"ps1.ipynb": notebook()}, LIMITS, T0)
    second = store.submit(
        "algo", "ps1", "ana", {"ps1.ipynb": notebook()}, LIMITS, T0 + dt.timedelta(minutes=1)
    )
    store.release_feedback(
        "algo", "ps1", "ana", second["timestamp"] + "\n", {"ps1.html": b"<p>good</p>"}, "prof", T0
    )
    [fb] = store.feedback("algo", learner="ana")
    assert fb["submission_id"] == second["id"] and fb["timestamp"] == second["timestamp"]
    assert store.feedback_files("algo", "ps1", "ana", second["id"]) == {"ps1.html": b"<p>good</p>"}
    with pytest.raises(ExchangeProblem, match="no feedback"):
        store.feedback_files("algo", "ps1", "ana", first["id"])
    # released again: replaced, not added
    store.release_feedback(
        "algo", "ps1", "ana", second["timestamp"], {"ps1.html": b"<p>better</p>"}, "prof", T0
    )
    assert store.feedback_files("algo", "ps1", "ana", second["id"]) == {"ps1.html": b"<p>better</p>"}
    assert store.feedback("algo", learner="ben") == []


def test_feedback_for_a_timestamp_nobody_submitted_is_refused(store):
    with pytest.raises(ExchangeProblem, match="no submission of ana") as err:
        store.release_feedback(
            "algo", "ps1", "ana", "2020-01-01 00:00:00.000000 UTC", {"ps1.html": b"x"}, "prof", T0
        )
    assert err.value.status == 404


def test_a_write_cut_short_leaves_nothing_visible_and_is_cleaned_at_start(store):
    half = store.root / "algo" / ".tmp" / "0123" / "new"
    half.mkdir(parents=True)
    (half / "submission.json").write_text("{")
    assert store.submissions("algo") == [] and [m["assignment_id"] for m in store.released("algo")] == ["ps1"]
    ExchangeStore(store.root)  # the service starting again
    assert not (store.root / "algo" / ".tmp").exists()


def test_a_submission_with_a_path_out_of_the_assignment_stores_nothing(store):
    with pytest.raises(ExchangeProblem, match="'../escape.txt' is not a valid file path") as err:
        store.submit("algo", "ps1", "ana", {"ps1.ipynb": notebook(), "../escape.txt": b"x"}, LIMITS, T0)
    assert err.value.status == 400
    assert store.submissions("algo") == []
    assert not list(store.root.rglob("escape.txt"))
    assert not list((store.root / "algo" / ".tmp").iterdir())
