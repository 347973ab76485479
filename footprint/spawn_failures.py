"""Failed server starts, as the hub's spawn hook records them (hub_config/metrics.py) and
`ailys usage` counts them (footprint/usage.py): one row each, in the hub's database.

Apart from usage.py so that the hub, which records, loads none of the reports' code.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass

from sqlalchemy import Column, DateTime, Engine, Integer, MetaData, String, Table, create_engine, select

metadata = MetaData()
spawn_failures = Table(
    "ailys_spawn_failure",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("who", String(64), nullable=False),
    Column("course", String(64)),
    Column("kind", String(16), nullable=False),  # local | slurm | docker
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("reason", String(300)),
)


@dataclass(frozen=True)
class SpawnFailure:
    who: str
    course: str | None
    kind: str
    at: dt.datetime
    reason: str = ""


def record_spawn_failure(url: str, failure: SpawnFailure) -> None:
    """Store one failed start (the hub's spawn hook calls it, off its event loop)."""
    engine = create_engine(url)
    try:
        metadata.create_all(engine, tables=[spawn_failures])
        with engine.begin() as db:
            db.execute(spawn_failures.insert(), [{**asdict(failure), "at": failure.at.astimezone(dt.UTC)}])
    finally:
        engine.dispose()


def read_spawn_failures(engine: Engine, course: str | None = None, since: dt.datetime | None = None):
    metadata.create_all(engine, tables=[spawn_failures])
    query = select(*(spawn_failures.c[k] for k in ("who", "course", "kind", "at", "reason")))
    if course:
        query = query.where(spawn_failures.c.course == course)
    if since:
        query = query.where(spawn_failures.c.at >= since.astimezone(dt.UTC))
    with engine.connect() as db:
        return [
            SpawnFailure(
                **{**row._asdict(), "at": row.at if row.at.tzinfo else row.at.replace(tzinfo=dt.UTC)}
            )
            for row in db.execute(query)
        ]
