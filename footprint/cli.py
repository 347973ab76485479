"""`ailys energy`: the site admin's energy and carbon report, and the collection of Slurm jobs'
records from accounting (the hub service that runs it periodically comes later)."""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

import click

from hub_config.site_option import catalogue_or_exit, site_option


def _database_url(catalogue) -> str:
    from hub_config.appliers.storage import database_url  # the hub's own default, in one place

    return database_url(catalogue)


def _since(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone() if value else None  # a date without a zone: this host's


@click.group()
def energy() -> None:
    """Energy and CO2 of sessions and grading runs (docs/energy.md)."""


def report_options(command):
    """--site, --course, --since, --format and --out: the options of a report (this one, `ailys usage`)."""
    for option in reversed(
        [
            site_option,
            click.option("--course", help="Only this course (a slug)."),
            click.option(
                "--since", type=click.DateTime(), help="Only records that ended since (YYYY-MM-DD)."
            ),
            click.option(
                "--format",
                "fmt",
                type=click.Choice(["table", "csv", "json", "png"]),
                default="table",
                show_default=True,
            ),
            click.option(
                "--out", type=click.Path(dir_okay=False, path_type=Path), help="Write here (png: required)."
            ),
        ]
    ):
        command = option(command)
    return command


def emit(rows, fmt: str, out: Path | None, texts: dict, png) -> None:
    """Print or write a report's ``rows``: ``texts[fmt](rows)`` for table, csv, json; ``png()``'s bytes."""
    if fmt == "png":
        if out is None:
            raise click.UsageError("--format png needs --out FILE")
        out.write_bytes(png())
        click.echo(f"wrote {out}")
        return
    text = texts[fmt](rows)
    if out:
        out.write_text(text if text.endswith("\n") else text + "\n")
        click.echo(f"wrote {out}")
    else:
        click.echo(text)


@energy.command()
@report_options
def report(site: str, course: str | None, since: dt.datetime | None, fmt: str, out: Path | None) -> None:
    """Totals per course, partition and kind of session, with how many figures were measured and
    how many estimated; energy and CO2 with the range their disputed constants give."""
    from .records import connect
    from .report import as_csv, as_json, as_png, as_table, reclaimed, reclaimed_lines, totals

    catalogue = catalogue_or_exit(site)
    engine = connect(_database_url(catalogue))
    try:
        rows = totals(engine, course=course, since=_since(since))
        idle = reclaimed(engine, course=course, since=_since(since))
    finally:
        engine.dispose()
    title = f"Energy of {course or catalogue.site.name}"
    texts = {
        # and what the idle culler gave back, per course (its own table: not an energy figure)
        "table": lambda rows: "\n".join([as_table(rows), *reclaimed_lines(idle)]),
        "csv": as_csv,
        "json": lambda rows: as_json(
            rows, {k: {"stops": n, "reclaimed_core_hours": h} for k, (n, h) in idle.items()}
        ),
    }
    emit(rows, fmt, out, texts, lambda: as_png(rows, title=title))


@energy.command()
@site_option
@click.option("--since", type=click.DateTime(), help="Read jobs from here (default: the last record).")
def collect(site: str, since: dt.datetime | None) -> None:
    """Store a record for every Slurm job of ours (sessions, autograde tasks) that ended since the
    last record; a job read again is not counted twice."""
    from .collect import collect as run

    catalogue = catalogue_or_exit(site)
    slurm_conf = catalogue.site.spawner.slurm.slurm_conf  # relative to the site file, as the spawner reads it
    conf = (catalogue.site_file.parent / slurm_conf).resolve() if slurm_conf else None
    try:
        done = run(_database_url(catalogue), catalogue.site.energy, slurm_conf=conf, since=_since(since))
    except (RuntimeError, FileNotFoundError) as err:
        click.echo(f"ailys energy collect: {err}", err=True)
        sys.exit(1)
    click.echo(f"{done.new} new records from {done.read} jobs since {done.since:%Y-%m-%d %H:%M:%S %Z}")
