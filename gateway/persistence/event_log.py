"""Reading the append-only events log in order: the safe horizon and status changes.

Events get an autoincrement id in the transaction that changes the state. A reader that
remembers "the last id I saw" must not step over an id that is taken but not yet committed
(PostgreSQL hands out sequence values before commit; SQLite, one writer at a time, never
leaves such a gap). ``horizon`` is the highest id below which no young gap remains: a gap
older than ``settle`` seconds is a rolled-back transaction and is skipped.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

from sqlalchemy import Connection, select

from gateway.persistence import repository as repo
from gateway.persistence import tables as t
from gateway.persistence.visibility import declarations_visible_to

TAIL = 1000  # how many of the newest events the horizon looks at


def horizon(conn: Connection, at: datetime, settle: float) -> int:
    """The highest event id a cursor may move to: every id at or below it is final."""
    if conn.dialect.name == "sqlite":
        return latest_id(conn)  # one writer at a time: ids commit in order, no gaps
    rows = conn.execute(
        select(t.events.c.id, t.events.c.at).order_by(t.events.c.id.desc()).limit(TAIL)
    ).all()
    tail = [(int(i), repo.as_utc(a)) for i, a in reversed(rows)]
    return safe_horizon(tail, at - timedelta(seconds=settle), full=len(rows) == TAIL)  # type: ignore[arg-type]


def safe_horizon(tail: list[tuple[int, datetime]], young: datetime, *, full: bool) -> int:
    """Over the newest events (id, time) in id order: the last id before a gap whose next
    event is newer than ``young`` (its transaction may still commit), else the last id."""
    if not tail:
        return 0
    if full and tail[0][1] > young:
        return tail[0][0] - 1  # busier than the window: stay behind it
    for (prev_id, _), (next_id, next_at) in pairwise(tail):
        if next_id != prev_id + 1 and next_at > young:
            return prev_id
    return tail[-1][0]


def latest_id(conn: Connection) -> int:
    """The newest event id (0 when the log is empty): where a new subscription starts."""
    value = conn.execute(select(t.events.c.id).order_by(t.events.c.id.desc()).limit(1)).scalar()
    return int(value or 0)


def status_changes(
    conn: Connection, org_id: str, *, after: int, upto: int, limit: int
) -> list[Any]:
    """Events after ``after`` (to ``upto``) that changed the status of a declaration
    ``org_id`` sees, oldest first, each with the status it changed from."""
    e, d = t.events, t.declarations
    prev = t.events.alias("prev")
    previous_status = (
        select(prev.c.status)
        .where(prev.c.declaration_id == e.c.declaration_id, prev.c.id < e.c.id)
        .order_by(prev.c.id.desc())
        .limit(1)
        .scalar_subquery()
    )
    stmt = (
        select(
            e.c.id,
            e.c.declaration_id,
            e.c.at,
            e.c.kind,
            e.c.source,
            e.c.status,
            e.c.code,
            e.c.info,
            previous_status.label("previous_status"),
            d.c.type.label("declaration_type"),
            d.c.order_no,
            d.c.logistics_no,
        )
        .join(d, d.c.id == e.c.declaration_id)
        .where(
            e.c.id > after,
            e.c.id <= upto,
            declarations_visible_to(org_id),
            previous_status.is_distinct_from(e.c.status),
        )
        .order_by(e.c.id)
        .limit(limit)
    )
    return list(conn.execute(stmt).mappings())
