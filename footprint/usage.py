"""`ailys usage`: how much the platform is used, per course, from the session records that
footprint/records.py keeps (one store of sessions: the rows of kind local, slurm and docker of
``ailys_footprint``), plus the spawn failures the hub records beside them (``ailys_spawn_failure``,
written by the hub's spawn hook, hub_config/metrics.py), in the same hub database.

    ailys usage [--course C] [--since DATE] [--format table|csv|json|png] [--out FILE]

Per course: sessions, learner-hours (wall-clock hours of its learners' sessions; with the course
files at hand, an instructor's session is not a learner's), active learners per ISO week (distinct
people with a session starting that week), spawn failures.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click

from hub_config.site_option import catalogue_or_exit

from .cli import emit, report_options
from .records import Footprint, read
from .spawn_failures import SpawnFailure, read_spawn_failures

SESSION_KINDS = ("local", "slurm", "docker")  # autograde rows are grading, not sessions
NO_COURSE = "(none)"


def week_of(moment: dt.datetime) -> str:
    year, week, _ = moment.isocalendar()
    return f"{year}-W{week:02d}"


@dataclass
class Week:
    week: str
    sessions: int = 0
    learner_hours: float = 0.0
    active_learners: int = 0
    spawn_failures: int = 0


@dataclass
class CourseUsage:
    course: str
    sessions: int = 0
    learner_hours: float = 0.0
    active_learners: int = 0  # distinct learners over the whole period
    spawn_failures: int = 0
    weeks: list[Week] = field(default_factory=list)


def usage(
    sessions: Iterable[Footprint],
    failures: Iterable[SpawnFailure] = (),
    learners: dict[str, set[str]] | None = None,
) -> list[CourseUsage]:
    """Per course (sorted), from session records and spawn failures. ``learners``: each course's
    learners (from the course files); then only theirs count as learner-hours and active learners.
    A session counts in the week it started; one without a start or an end is left out."""
    people: dict[tuple[str, str], set[str]] = {}
    weeks: dict[tuple[str, str], Week] = {}
    totals: dict[str, CourseUsage] = {}
    for s in sessions:
        if s.kind not in SESSION_KINDS or s.start is None or s.end is None:
            continue
        course = s.course or NO_COURSE
        is_learner = learners is None or s.who in learners.get(course, set())
        week = weeks.setdefault((course, week_of(s.start)), Week(week_of(s.start)))
        total = totals.setdefault(course, CourseUsage(course))
        week.sessions += 1
        total.sessions += 1
        if is_learner:
            hours = max(0.0, (s.end - s.start).total_seconds() / 3600)
            week.learner_hours += hours
            total.learner_hours += hours
            people.setdefault((course, week.week), set()).add(s.who)
            people.setdefault((course, ""), set()).add(s.who)
    for f in failures:
        course = f.course or NO_COURSE
        weeks.setdefault((course, week_of(f.at)), Week(week_of(f.at))).spawn_failures += 1
        totals.setdefault(course, CourseUsage(course)).spawn_failures += 1
    for (course, name), week in sorted(weeks.items()):
        week.active_learners = len(people.get((course, name), ()))
        week.learner_hours = round(week.learner_hours, 3)
        totals[course].weeks.append(week)
    for total in totals.values():
        total.active_learners = len(people.get((total.course, ""), ()))
        total.learner_hours = round(total.learner_hours, 3)
    return [totals[c] for c in sorted(totals)]


COLUMNS = ["course", "week", "sessions", "learner_hours", "active_learners", "spawn_failures"]


def as_csv(rows: list[CourseUsage]) -> str:
    """One line per course and week, then the course's total (week "all")."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for c in rows:
        for w in c.weeks:
            writer.writerow(
                [c.course, w.week, w.sessions, w.learner_hours, w.active_learners, w.spawn_failures]
            )
        writer.writerow([c.course, "all", c.sessions, c.learner_hours, c.active_learners, c.spawn_failures])
    return out.getvalue()


def as_json(rows: list[CourseUsage]) -> str:
    return json.dumps({"courses": [asdict(c) for c in rows]}, indent=2)


def as_table(rows: list[CourseUsage]) -> str:
    lines = [f"{'course':<24} {'sessions':>8} {'learner-h':>10} {'learners':>8} {'failures':>8}"]
    for c in rows:
        lines.append(
            f"{c.course:<24} {c.sessions:>8} {c.learner_hours:>10.1f} {c.active_learners:>8} {c.spawn_failures:>8}"
        )
    return "\n".join(lines) if rows else "no sessions recorded"


def as_png(rows: list[CourseUsage], title: str = "Usage per week") -> bytes:
    """Two panels sharing the weeks: active learners per course (lines), learner-hours (stacked bars);
    spawn failures written above the bars where there were any."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    weeks = sorted({w.week for c in rows for w in c.weeks})
    x = range(len(weeks))
    figure = Figure(figsize=(max(7, 0.6 * len(weeks) + 3), 7))
    active, hours = figure.subplots(2, 1, sharex=True)
    bottom = [0.0] * len(weeks)
    failed = [0] * len(weeks)
    for c in rows:
        by_week = {w.week: w for w in c.weeks}
        active.plot(
            x, [by_week[k].active_learners if k in by_week else 0 for k in weeks], marker="o", label=c.course
        )
        heights = [by_week[k].learner_hours if k in by_week else 0.0 for k in weeks]
        hours.bar(x, heights, bottom=bottom, label=c.course)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
        failed = [
            f + (by_week[k].spawn_failures if k in by_week else 0) for f, k in zip(failed, weeks, strict=True)
        ]
    for i, n in enumerate(failed):
        if n:
            hours.annotate(
                f"{n} failed", (i, bottom[i]), ha="center", va="bottom", fontsize=8, color="#a00000"
            )
    active.set_ylabel("active learners")
    active.yaxis.set_major_locator(MaxNLocator(integer=True))
    active.set_title(title)
    hours.set_ylabel("learner-hours")
    hours.set_xticks(list(x), weeks, rotation=45, ha="right")
    if rows:
        active.legend(fontsize=8, loc="upper left")
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=100)
    return out.getvalue()


@click.command("usage")
@report_options
def usage_command(
    site: str, course: str | None, since: dt.datetime | None, fmt: str, out: Path | None
) -> None:
    """Sessions, learner-hours, active learners per week and spawn failures, per course."""
    from hub_config.appliers.storage import database_url

    from .records import connect

    catalogue = catalogue_or_exit(site)
    since = since.astimezone() if since else None  # a date without a zone: this host's
    engine = connect(database_url(catalogue))
    try:
        sessions = [r for r in read(engine, course=course, since=since) if r.kind in SESSION_KINDS]
        failures = read_spawn_failures(engine, course=course, since=since)
    finally:
        engine.dispose()
    rows = usage(sessions, failures, {c.slug: set(c.learners) for c in catalogue.courses})
    title = f"Usage of {course or catalogue.site.name}"
    emit(
        rows, fmt, out, {"table": as_table, "csv": as_csv, "json": as_json}, lambda: as_png(rows, title=title)
    )
