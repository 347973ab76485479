"""The site admin's report: totals per course, partition and kind of session, with how many
figures were measured and how many estimated. Summed by the database (GROUP BY), so 100,000
records cost one query, not 100,000 objects (make bench-energy)."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from dataclasses import asdict, dataclass

from sqlalchemy import Engine, func, select

from .records import _utc, footprints

SUMMED = (
    "core_hours",
    "memory_gb_hours",
    "gpu_hours",
    "energy_wh",
    "energy_wh_low",
    "energy_wh_high",
    "co2_g",
    "co2_g_low",
    "co2_g_high",
)


@dataclass
class Total:
    course: str
    partition: str
    kind: str
    records: int = 0
    measured: int = 0
    estimate: int = 0
    core_hours: float = 0.0
    memory_gb_hours: float = 0.0
    gpu_hours: float = 0.0
    energy_wh: float = 0.0
    energy_wh_low: float = 0.0
    energy_wh_high: float = 0.0
    co2_g: float = 0.0
    co2_g_low: float = 0.0
    co2_g_high: float = 0.0


def totals(engine: Engine, course: str | None = None, since: dt.datetime | None = None) -> list[Total]:
    """One Total per (course, partition, kind), largest energy first."""
    c = footprints.c
    keys = (c.course, c.partition, c.kind, c.method)
    query = select(*keys, func.count(), *(func.sum(c[name]) for name in SUMMED)).group_by(*keys)
    if course:
        query = query.where(c.course == course)
    if since:
        query = query.where(c.end >= _utc(since))
    found: dict[tuple, Total] = {}
    with engine.connect() as db:
        for row in db.execute(query):
            key = (row[0] or "-", row[1] or "-", row[2])
            total = found.setdefault(key, Total(*key))
            total.records += row[4]
            setattr(total, row[3], getattr(total, row[3]) + row[4])
            for name, value in zip(SUMMED, row[5:], strict=True):
                setattr(total, name, getattr(total, name) + (value or 0.0))
    return sorted(found.values(), key=lambda t: (-t.energy_wh, t.course, t.partition, t.kind))


def grand_total(rows: list[Total]) -> Total:
    total = Total("all", "all", "all")
    for row in rows:
        for name in ("records", "measured", "estimate", *SUMMED):
            setattr(total, name, getattr(total, name) + getattr(row, name))
    return total


def _range(value: float, low: float, high: float, digits: int = 1) -> str:
    return f"{value:.{digits}f} ({low:.{digits}f}-{high:.{digits}f})"


def as_table(rows: list[Total]) -> str:
    head = ("course", "partition", "kind", "records", "measured/est.", "core-h", "GB-h", "GPU-h")
    head += ("energy Wh (range)", "gCO2e (range)")
    lines = [head]
    for t in [*rows, grand_total(rows)] if rows else []:
        lines.append(
            (
                t.course,
                t.partition,
                t.kind,
                str(t.records),
                f"{t.measured}/{t.estimate}",
                f"{t.core_hours:.2f}",
                f"{t.memory_gb_hours:.2f}",
                f"{t.gpu_hours:.2f}",
                _range(t.energy_wh, t.energy_wh_low, t.energy_wh_high),
                _range(t.co2_g, t.co2_g_low, t.co2_g_high),
            )
        )
    if len(lines) == 1:
        return "no footprint records"
    widths = [max(len(line[i]) for line in lines) for i in range(len(head))]
    return "\n".join(
        "  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines
    )


def as_csv(rows: list[Total]) -> str:
    out = io.StringIO()
    names = list(asdict(Total("", "", "")))
    writer = csv.DictWriter(out, fieldnames=names, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(row).items()})
    return out.getvalue()


def as_json(rows: list[Total], idle: dict | None = None) -> str:
    data = {"totals": [asdict(r) for r in rows], "all": asdict(grand_total(rows))}
    return json.dumps(
        {**data, **({"idle_reclaimed": idle} if idle is not None else {})}, indent=2, sort_keys=True
    )


def as_png(rows: list[Total], title: str = "Energy per course and kind") -> bytes:
    """A horizontal bar per (course, kind): energy in Wh, the whisker its range."""
    import matplotlib

    matplotlib.use("Agg")  # no display: a file
    from matplotlib.figure import Figure

    merged: dict[str, list[float]] = {}
    for t in rows:
        bar = merged.setdefault(f"{t.course} · {t.kind}", [0.0, 0.0, 0.0])
        bar[0] += t.energy_wh
        bar[1] += t.energy_wh_low
        bar[2] += t.energy_wh_high
    labels = sorted(merged, key=lambda k: merged[k][0])[-30:]  # the largest 30
    values = [merged[k][0] for k in labels]
    errors = [[merged[k][0] - merged[k][1] for k in labels], [merged[k][2] - merged[k][0] for k in labels]]
    figure = Figure(figsize=(8, 1.5 + 0.35 * max(1, len(labels))))
    axes = figure.subplots()
    axes.barh(labels, values, xerr=errors, color="#4c8c4a", ecolor="#333333", capsize=3)
    axes.set_xlabel("energy, Wh (whiskers: range of the disputed constants)")
    axes.set_title(title)
    figure.tight_layout()
    out = io.BytesIO()
    figure.savefig(out, format="png", dpi=100)
    return out.getvalue()


def reclaimed(engine: Engine, course: str | None = None, since: dt.datetime | None = None) -> dict:
    """{course: (idle servers the culler stopped, their reclaimed core-hours)}, one query."""
    from .records import idle_stops

    c = idle_stops.c
    query = select(c.course, func.count(), func.sum(c.reclaimed_core_hours)).group_by(c.course)
    if course:
        query = query.where(c.course == course)
    if since:
        query = query.where(c.end >= _utc(since))
    with engine.connect() as db:
        return {row[0] or "-": (row[1], row[2] or 0.0) for row in db.execute(query)}


def reclaimed_lines(found: dict) -> list[str]:
    return [
        f"{slug}: the culler stopped {stops} idle servers, reclaimed {hours:.2f} core-hours"
        for slug, (stops, hours) in sorted(found.items())
    ]
