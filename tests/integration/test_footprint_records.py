"""Footprint records in the hub's database, SQLite and a real PostgreSQL (footprint/records.py),
and `ailys energy report` over them in every format."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from footprint.records import Footprint, connect, latest_end, read, store
from footprint.report import grand_total, totals
from tests.conftest import need
from tests.services import postgres as pg

T0 = dt.datetime(2026, 11, 2, 9, 0, tzinfo=dt.UTC)


def record(ref: str, kind="slurm", course="nrg-intro", hours=1.0, method="estimate", **extra) -> Footprint:
    values = dict(
        kind=kind,
        ref=ref,
        who="nrg-ana",
        course=course,
        partition="cpu" if kind in ("slurm", "autograde") else None,
        start=T0,
        end=T0 + dt.timedelta(hours=hours),
        core_hours=hours,
        core_usage=0.5,
        memory_gb_hours=2 * hours,
        gpu_hours=0.0,
        energy_wh=10 * hours,
        energy_wh_low=6 * hours,
        energy_wh_high=12 * hours,
        co2_g=0.5 * hours,
        co2_g_low=0.2 * hours,
        co2_g_high=0.6 * hours,
        method=method,
    )
    return Footprint(**{**values, **extra})


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database_url(request, tmp_path, output_dir):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}"
        return
    need(pg.missing() is None, pg.missing() or "")
    with pg.PostgresServer(database="nrg_hub", user="nrg_hub", log=output_dir / "postgres.log") as server:
        yield server.url


def test_a_record_stored_twice_is_kept_once_and_reads_back_equal(database_url):
    engine = connect(database_url)
    try:
        first = [record("1"), record("2", hours=2), record("s-ana-1", kind="local", method="estimate")]
        assert store(engine, first) == 3
        again = [record("1"), record("3", kind="autograde", course=None, method="measured")]
        assert store(engine, again) == 1  # "1" is there: a re-read of sacct does not count it twice
        back = read(engine)
        assert [r.ref for r in back] == ["1", "s-ana-1", "3", "2"]  # by end, then id
        assert back[0] == first[0]  # datetimes come back aware, in UTC
        assert latest_end(engine, ["slurm", "autograde"]) == T0 + dt.timedelta(hours=2)
        assert [r.ref for r in read(engine, course="nrg-intro", since=T0 + dt.timedelta(hours=1.5))] == ["2"]
        connect(database_url).dispose()  # the table exists: created once, kept
    finally:
        engine.dispose()


def test_totals_per_course_partition_and_kind_count_the_methods(database_url):
    engine = connect(database_url)
    try:
        store(
            engine,
            [
                record("1"),
                record("2", method="measured"),
                record("3", course="nrg-ml", hours=3),
                record("4", kind="autograde", course=None),
            ],
        )
        rows = totals(engine)
        first = rows[0]
        assert (first.course, first.partition, first.kind, first.energy_wh) == ("nrg-ml", "cpu", "slurm", 30)
        intro = next(r for r in rows if r.course == "nrg-intro")
        assert (intro.records, intro.measured, intro.estimate) == (2, 1, 1)
        assert (intro.energy_wh, intro.energy_wh_low, intro.co2_g_high) == pytest.approx((20, 12, 1.2))
        assert next(r for r in rows if r.kind == "autograde").course == "-"
        assert grand_total(rows).records == 4
        assert [r.course for r in totals(engine, course="nrg-intro")] == ["nrg-intro"]
    finally:
        engine.dispose()


def ailys(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "hub_config.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=cwd, timeout=120)


def test_ailys_energy_report_prints_table_csv_json_and_draws_a_png(tmp_path):
    (tmp_path / "courses").mkdir()
    site = {"name": "nrg-site", "data_dir": "data", "courses_dir": "courses"}
    (tmp_path / "nrg-site.yaml").write_text(yaml.safe_dump(site))
    (tmp_path / "data").mkdir()
    engine = connect(f"sqlite:///{tmp_path / 'data' / 'jupyterhub.sqlite'}")  # the hub's default place
    store(engine, [record("1"), record("2", course="nrg-ml", method="measured", hours=2)])
    engine.dispose()
    checkout = Path(__file__).parents[2]
    site_file = str(tmp_path / "nrg-site.yaml")

    table = ailys("energy", "report", "--site", site_file, cwd=checkout)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert lines[0].split()[:4] == ["course", "partition", "kind", "records"]
    assert lines[1].split()[:5] == ["nrg-ml", "cpu", "slurm", "1", "1/0"]
    assert "20.0 (12.0-24.0)" in lines[1] and lines[-1].startswith("all")

    rows = list(
        csv.DictReader(
            io.StringIO(
                ailys("energy", "report", "--site", site_file, "--format", "csv", cwd=checkout).stdout
            )
        )
    )
    assert [(r["course"], r["estimate"], r["energy_wh"]) for r in rows] == [
        ("nrg-ml", "0", "20.0"),
        ("nrg-intro", "1", "10.0"),
    ]

    since = ailys(
        "energy", "report", "--site", site_file, "--format", "json", "--course", "nrg-intro", cwd=checkout
    )
    assert json.loads(since.stdout)["all"]["records"] == 1

    later = ailys("energy", "report", "--site", site_file, "--since", "2026-12-01", cwd=checkout)
    assert later.stdout.strip() == "no footprint records"

    png = tmp_path / "energy.png"
    drawn = ailys("energy", "report", "--site", site_file, "--format", "png", "--out", str(png), cwd=checkout)
    assert drawn.returncode == 0, drawn.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
