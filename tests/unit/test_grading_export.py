"""The grade export's pure parts: late policy, notes, Moodle's CSV shape."""

import csv
import datetime as dt
import io
import json

import pytest

from grading.export import Grade, Row, apply_late_policy, late_by, notes, number, to_csv, to_json
from hub_config.catalogue import load_catalogue

from .conftest import course

DUE = dt.datetime(2026, 10, 1, 10, 0)


@pytest.mark.parametrize(
    ("action", "seconds", "late", "score"),
    [
        ("flag", 0, False, 7.0),
        ("flag", 300, False, 7.0),  # within the 10 min grace
        ("flag", 601, True, 7.0),
        ("zero", 601, True, 0.0),
        ("zero", 300, False, 7.0),
        ("accept", 86400, False, 7.0),
    ],
)
def test_late_policy(action, seconds, late, score):
    grade = apply_late_policy(Grade(score=7.0, max_score=10), seconds, action, grace=600)
    assert (grade.late, grade.score) == (late, score)


def test_zero_leaves_an_ungraded_submission_empty():
    assert apply_late_policy(Grade(score=None), 3600, "zero", 0).score is None


def test_late_by_reads_naive_utc_and_unknowns():
    assert late_by(DUE + dt.timedelta(hours=2), DUE) == 7200
    assert late_by(DUE - dt.timedelta(hours=2), DUE) == 0
    assert late_by(None, DUE) == 0 and late_by(DUE, None) == 0


def test_numbers_as_moodle_reads_them():
    assert [number(x) for x in (None, 3.0, 2.5, 1 / 3, 0.0)] == ["", "3", "2.5", "0.33", "0"]


def test_notes_say_late_and_changed_cells():
    row = Row(
        "ana",
        "",
        {
            "ps1": Grade(score=0.0, late=True, late_by_seconds=90061, zeroed_late=True),
            "ps2": Grade(score=1.0, tampered=["ps2: test: edited"], flagged=True),
            "ps3": Grade(score=1.0, needs_manual_grade=True),
        },
    )
    assert notes(row) == (
        "ps1: late by 1d1h1m, counted 0; ps2: read-only or test cells changed "
        "(ps2: test: edited), original tests graded; ps3: not fully graded yet"
    )


def test_csv_one_row_per_learner_one_column_per_assignment(write_catalogue):
    cat = load_catalogue(
        write_catalogue(
            courses={
                "algo": course(
                    assignments=[{"name": "ps1"}, {"name": "ps2"}], grades={"emails": {"ana": "ana@uni.fr"}}
                )
            }
        )
    )
    model = cat.course("algo")
    rows = [
        Row(
            "ana", "ana@uni.fr", {"ps1": Grade(score=2.5, max_score=3), "ps2": Grade(score=None, max_score=2)}
        ),
        Row("ben", "", {"ps1": Grade(score=3.0, max_score=3), "ps2": Grade(score=2.0, max_score=2)}),
    ]
    parsed = list(csv.reader(io.StringIO(to_csv(model, rows))))
    assert parsed == [
        ["Username", "Email address", "ps1", "ps2", "Total", "Notes"],
        ["ana", "ana@uni.fr", "2.5", "", "2.5", ""],
        ["ben", "", "3", "2", "5", ""],
    ]
    data = json.loads(to_json(model, rows, now=dt.datetime(2026, 11, 1, tzinfo=dt.UTC)))
    assert data["max_total"] == 5 and data["late_policy"] == {"action": "flag", "grace": 0}
    assert [(r["username"], r["total"]) for r in data["learners"]] == [("ana", 2.5), ("ben", 5.0)]
    assert data["learners"][0]["grades"]["ps2"]["score"] is None
