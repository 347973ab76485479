"""Energy records are personal data: `ailys person export` packs a person's (their sessions, the
graded submissions that name them, their idle sessions the culler stopped), and `forget`
anonymises them, keeping the course's totals true; nobody else's change. The world of
test_personal_data.py (a real hub database in a temporary data folder), with records added."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import zipfile

from footprint.records import (
    FORGOTTEN,
    IdleStop,
    connect,
    of_person,
    read,
    read_idle_stops,
    store,
    store_idle_stop,
)
from hub_config.personal_data import export, forget
from hub_config.personal_data.places import places

from .test_personal_data import NOW, SHORT, TINA, gradebooks, world  # noqa: F401 - fixtures

OTHER = "pd-other"


def record(kind: str, ref: str, who: str, wh: float, assignment: str | None = None):
    from tests.unit.test_footprint_service import record as base

    return dataclasses.replace(base(who=who, course=SHORT, wh=wh), kind=kind, ref=ref, assignment=assignment)


def with_records(catalogue):
    engine = connect(places(catalogue).database_url)
    store(
        engine,
        [
            record("local", f"{TINA}/@2026-11-03T09:00:00Z", TINA, 10.0),
            record("slurm", "4242", TINA, 20.0),
            record(
                "autograde", f"local:{SHORT}/ps1/{TINA}@2026-11-04T10:00:00.000000Z", "pd-grader", 1.0, "ps1"
            ),
            record("local", f"{OTHER}/@2026-11-03T09:00:00Z", OTHER, 5.0),
            record(
                "autograde", f"local:{SHORT}/ps1/{OTHER}@2026-11-04T10:00:00.000000Z", "pd-grader", 2.0, "ps1"
            ),
        ],
    )
    end = dt.datetime(2026, 11, 3, 12, tzinfo=dt.UTC)
    for who in (TINA, OTHER):
        store_idle_stop(
            engine, IdleStop(f"{who}/@2026-11-03T09:00:00Z", who, SHORT, "local", end, 1.0, 1.5, 2.0)
        )
    return engine


def test_the_export_holds_the_energy_records_about_them_only(world, tmp_path):  # noqa: F811
    catalogue = world()
    with_records(catalogue).dispose()
    export(catalogue, TINA, tmp_path / "tina.zip", now=NOW)
    with zipfile.ZipFile(tmp_path / "tina.zip") as z:
        held = json.loads(z.read("footprint.json"))
        readme = z.read("README.txt").decode()
    assert sorted(r["energy_wh"] for r in held["records"]) == [1.0, 10.0, 20.0]
    assert [s["who"] for s in held["idle_stops"]] == [TINA]
    assert OTHER not in json.dumps(held)
    assert "footprint.json" in readme and "energy and CO2 records" in readme


def test_forget_anonymises_them_and_keeps_the_courses_totals(world):  # noqa: F811
    catalogue = world()
    engine = with_records(catalogue)
    try:
        before = sum(r.energy_wh for r in read(engine, course=SHORT))
        text = "\n".join(forget(catalogue, TINA).lines())
        assert "removed: name from 3 energy records and 1 idle-stop records" in text, text
        assert of_person(engine, TINA) == ([], [])
        records = read(engine, course=SHORT)
        assert sum(r.energy_wh for r in records) == before  # the course's figures stay true
        assert not any(TINA in r.ref or r.who == TINA for r in records)
        by_wh = {r.energy_wh: r for r in records}
        assert by_wh[10.0].who == by_wh[20.0].who == FORGOTTEN
        assert by_wh[20.0].ref == "4242"  # a job id: reading sacct again adds no record of hers
        assert by_wh[1.0].who == "pd-grader"  # the grader's task, no longer naming her
        assert (by_wh[5.0].who, by_wh[2.0].ref) == (
            OTHER,
            f"local:{SHORT}/ps1/{OTHER}@2026-11-04T10:00:00.000000Z",
        )
        assert sorted(s.who for s in read_idle_stops(engine, course=SHORT)) == sorted([FORGOTTEN, OTHER])
        assert len(of_person(engine, OTHER)[0]) == 2  # the other's untouched
    finally:
        engine.dispose()
