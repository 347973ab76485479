"""Footprint records in the hub's own database (SQLite or PostgreSQL, the URL the hub uses:
hub_config/appliers/storage.py), in a table of ours, ``ailys_footprint``, made if missing.

One row per session, Slurm job attempt or autograde task, unique by (kind, ref): storing the same
record again (sacct read again after a hub restart) changes nothing.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import asdict, dataclass, fields

from sqlalchemy import (
    Column,
    DateTime,
    Engine,
    Float,
    Integer,
    MetaData,
    String,
    Table,
    UniqueConstraint,
    create_engine,
    func,
    select,
)

KINDS = ("local", "slurm", "docker", "autograde")
METHODS = ("measured", "estimate")

metadata = MetaData()
footprints = Table(
    "ailys_footprint",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # local | slurm | docker | autograde
    Column("ref", String(128), nullable=False),  # job id (123, 123_4, 123@<start>), session id
    Column("who", String(64), nullable=False),
    Column("course", String(64)),
    Column("partition", String(64)),
    Column("start", DateTime(timezone=True)),
    Column("end", DateTime(timezone=True), index=True),
    Column("core_hours", Float, nullable=False),
    Column("core_usage", Float, nullable=False),
    Column("memory_gb_hours", Float, nullable=False),
    Column("gpu_hours", Float, nullable=False),
    Column("energy_wh", Float, nullable=False),
    Column("energy_wh_low", Float, nullable=False),
    Column("energy_wh_high", Float, nullable=False),
    Column("co2_g", Float, nullable=False),
    Column("co2_g_low", Float, nullable=False),
    Column("co2_g_high", Float, nullable=False),
    Column("method", String(16), nullable=False),  # measured | estimate
    Column("assignment", String(128)),  # autograde: the assignment graded; a run total sums its tasks
    UniqueConstraint("kind", "ref", name="ailys_footprint_kind_ref"),
)
# Sessions the idle culler stopped (footprint/service.py sees them end idle): what it reclaimed.
idle_stops = Table(
    "ailys_idle_stop",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ref", String(160), nullable=False, unique=True),  # <user>/<server>@<start>
    Column("who", String(64), nullable=False),
    Column("course", String(64)),
    Column("kind", String(16), nullable=False),
    Column("end", DateTime(timezone=True), index=True),
    Column("cores", Float, nullable=False),
    Column("idle_hours", Float, nullable=False),  # from its last activity to its stop
    Column("reclaimed_core_hours", Float, nullable=False),  # cores × (its limit - its duration)
)

# The last sample of each running local or container session (footprint/service.py), so that one
# that ends while the service is down is recorded from it when the service is back.
live_meters = Table(
    "ailys_live_meter",
    metadata,
    Column("ref", String(160), primary_key=True),  # <user>/<server>@<start>
    Column("who", String(64), nullable=False),
    Column("server", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("course", String(64)),
    Column("started", Float, nullable=False),  # epoch seconds
    Column("cpu_s", Float, nullable=False),
    Column("peak_rss", Float, nullable=False),
    Column("last_sample", Float, nullable=False),
    Column("last_activity", Float),
)
LIVE_FIELDS = (
    "who",
    "server",
    "kind",
    "course",
    "started",
    "cpu_s",
    "peak_rss",
    "last_sample",
    "last_activity",
)


@dataclass(frozen=True)
class Footprint:
    kind: str
    ref: str
    who: str
    course: str | None
    partition: str | None
    start: dt.datetime | None
    end: dt.datetime | None
    core_hours: float
    core_usage: float
    memory_gb_hours: float
    gpu_hours: float
    energy_wh: float
    energy_wh_low: float
    energy_wh_high: float
    co2_g: float
    co2_g_low: float
    co2_g_high: float
    method: str
    assignment: str | None = None

    def __post_init__(self):
        if self.kind not in KINDS or self.method not in METHODS:
            raise ValueError(f"kind {self.kind!r} or method {self.method!r} unknown")

    @classmethod
    def of(cls, usage, wh, co2, method: str, **who) -> Footprint:
        """The record of ``usage`` (footprint.model.Usage) that cost ``wh`` and ``co2`` (Ranges);
        ``who``: kind, ref, who, course, partition, start, end and, for grading, assignment."""
        return cls(
            **who,
            core_hours=usage.core_hours,
            core_usage=usage.core_usage,
            memory_gb_hours=usage.memory_gb_hours,
            gpu_hours=usage.gpu_hours,
            energy_wh=wh.value,
            energy_wh_low=wh.low,
            energy_wh_high=wh.high,
            co2_g=co2.value,
            co2_g_low=co2.low,
            co2_g_high=co2.high,
            method=method,
        )


_COLUMNS = [f.name for f in fields(Footprint)]


def connect(url: str) -> Engine:
    """An engine on the hub database, with our table created if missing."""
    engine = create_engine(url)
    metadata.create_all(engine, tables=[footprints, idle_stops, live_meters])
    return engine


def _dialect_insert(engine: Engine):
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif engine.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    else:
        raise ValueError(f"the hub database is SQLite or PostgreSQL, not {engine.dialect.name}")
    return insert


def _insert(engine: Engine, table: Table = footprints, keys: tuple[str, ...] = ("kind", "ref")):
    # RETURNING counts the rows inserted: executemany's rowcount is -1 on psycopg.
    insert = _dialect_insert(engine)
    return insert(table).on_conflict_do_nothing(index_elements=list(keys)).returning(table.c.id)


def store(engine: Engine, records: Iterable[Footprint], batch: int = 5000) -> int:
    """Insert the records not stored yet; return how many were new."""
    rows = [{**asdict(r), "start": _utc(r.start), "end": _utc(r.end)} for r in records]
    new = 0
    with engine.begin() as db:
        for i in range(0, len(rows), batch):
            new += len(db.execute(_insert(engine), rows[i : i + batch]).all())
    return new


def _utc(moment: dt.datetime | None) -> dt.datetime | None:
    # SQLite keeps no zone: every moment goes in as UTC.
    return moment.astimezone(dt.UTC) if moment is not None else None


def _aware(moment: dt.datetime | None) -> dt.datetime | None:
    # SQLite gives back naive datetimes: what we stored was UTC.
    return moment.replace(tzinfo=dt.UTC) if moment is not None and moment.tzinfo is None else moment


def latest_end(engine: Engine, kinds: Iterable[str]) -> dt.datetime | None:
    """The end of the latest record of these kinds (where `ailys energy collect` goes on from)."""
    with engine.connect() as db:
        query = select(func.max(footprints.c.end)).where(footprints.c.kind.in_(list(kinds)))
        return _aware(db.execute(query).scalar())


def read(
    engine: Engine, course: str | None = None, since: dt.datetime | None = None, who: str | None = None
) -> list[Footprint]:
    """Records, oldest first, of one course, one person and/or ending since a moment."""
    query = select(*(footprints.c[name] for name in _COLUMNS)).order_by(footprints.c.end, footprints.c.id)
    if course:
        query = query.where(footprints.c.course == course)
    if who:
        query = query.where(footprints.c.who == who)
    if since:
        query = query.where(footprints.c.end >= _utc(since))
    with engine.connect() as db:
        return [
            Footprint(**{**row._asdict(), "start": _aware(row.start), "end": _aware(row.end)})
            for row in db.execute(query)
        ]


@dataclass(frozen=True)
class IdleStop:
    ref: str
    who: str
    course: str | None
    kind: str
    end: dt.datetime
    cores: float
    idle_hours: float
    reclaimed_core_hours: float


def store_idle_stop(engine: Engine, stop: IdleStop) -> bool:
    """Record a session the culler stopped; False when it was recorded already."""
    row = {**asdict(stop), "end": _utc(stop.end)}
    with engine.begin() as db:
        return bool(db.execute(_insert(engine, idle_stops, ("ref",)), [row]).all())


def read_idle_stops(engine: Engine, course: str | None = None) -> list[IdleStop]:
    names = [f.name for f in fields(IdleStop)]
    query = select(*(idle_stops.c[n] for n in names)).order_by(idle_stops.c.end)
    if course:
        query = query.where(idle_stops.c.course == course)
    with engine.connect() as db:
        return [IdleStop(**{**row._asdict(), "end": _aware(row.end)}) for row in db.execute(query)]


def save_live(engine: Engine, meters: list[dict]) -> None:
    """Keep each meter's last sample ({ref, *LIVE_FIELDS}), replacing the one before."""
    if not meters:
        return
    statement = _dialect_insert(engine)(live_meters)
    changing = ("cpu_s", "peak_rss", "last_sample", "last_activity")
    statement = statement.on_conflict_do_update(
        index_elements=["ref"], set_={n: statement.excluded[n] for n in changing}
    )
    with engine.begin() as db:
        db.execute(statement, meters)


def load_live(engine: Engine) -> list[dict]:
    with engine.connect() as db:
        return [row._asdict() for row in db.execute(select(live_meters))]


def drop_live(engine: Engine, ref: str) -> None:
    from sqlalchemy import delete

    with engine.begin() as db:
        db.execute(delete(live_meters).where(live_meters.c.ref == ref))


# --- personal data (hub_config/personal_data: `ailys person export` and `forget`) ----------------

FORGOTTEN = "(forgotten)"


def _naming(table: Table, name: str):
    """Rows about ``name``: theirs (who), or whose ref names them: a session's <user>/<server>@<start>,
    a local autograde task's local:<course>/<assignment>/<student>@<start>."""
    ref = table.c.ref
    return (
        (table.c.who == name)
        | ref.startswith(f"{name}/", autoescape=True)
        | ref.contains(f"/{name}@", autoescape=True)
    )


def _has_tables(engine: Engine) -> bool:
    from sqlalchemy import inspect

    return inspect(engine).has_table(footprints.name)  # never made: nothing held


def of_person(engine: Engine, name: str) -> tuple[list[Footprint], list[IdleStop]]:
    """Every record about ``name``, for their export."""
    if not _has_tables(engine):
        return [], []
    with engine.connect() as db:
        query = select(*(footprints.c[n] for n in _COLUMNS)).where(_naming(footprints, name))
        found = [
            Footprint(**{**row._asdict(), "start": _aware(row.start), "end": _aware(row.end)})
            for row in db.execute(query.order_by(footprints.c.end))
        ]
        names = [f.name for f in fields(IdleStop)]
        query = select(*(idle_stops.c[n] for n in names)).where(_naming(idle_stops, name))
        stops = [IdleStop(**{**row._asdict(), "end": _aware(row.end)}) for row in db.execute(query)]
    return found, stops


def forget_person(engine: Engine, name: str) -> tuple[int, int]:
    """Anonymise the records about ``name``: their who becomes FORGOTTEN and a ref that names them an
    opaque one, so that course, partition and site totals stay true and nothing leads back to
    them. A Slurm record's ref is its job id, kept: `ailys energy collect` reading that job again
    finds it stored and adds nothing. (records, idle stops) changed."""
    import uuid

    from sqlalchemy import update

    if not _has_tables(engine):
        return 0, 0
    changed = []
    with engine.begin() as db:
        for table in (footprints, idle_stops):
            rows = db.execute(select(table.c.id, table.c.who, table.c.ref).where(_naming(table, name))).all()
            for row in rows:
                named = row.ref.startswith(f"{name}/") or f"/{name}@" in row.ref
                values = {
                    "who": FORGOTTEN if row.who == name else row.who,  # a grading task's who: the grader
                    "ref": f"forgotten:{uuid.uuid4().hex}" if named else row.ref,
                }
                db.execute(update(table).where(table.c.id == row.id).values(**values))
            changed.append(len(rows))
    return changed[0], changed[1]
