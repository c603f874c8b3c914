"""Reads and writes of bulk uploads (batches) and their per-item results (Core SQL)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping

from gateway.persistence import tables as t
from gateway.persistence.repository import now

UNFINISHED = ("queued", "running")
_SUMMARY = [c for c in t.batches.c if c.name != "upload"]


def insert_batch(conn: Connection, items: Sequence[dict[str, Any]], **values: Any) -> None:
    """The batch row with its bytes, and one pending row per item."""
    conn.execute(insert(t.batches).values(**values))
    if items:
        conn.execute(
            insert(t.batch_items),
            [{"batch_id": values["id"], "status": "pending", **i} for i in items],
        )


def get_batch(conn: Connection, batch_id: str, *, with_upload: bool = False) -> RowMapping | None:
    """A batch (without its bytes unless asked), or None."""
    cols = list(t.batches.c) if with_upload else _SUMMARY
    return conn.execute(select(*cols).where(t.batches.c.id == batch_id)).mappings().first()


def claim_batch(conn: Connection, batch_id: str, lease_seconds: float) -> bool:
    """Take the batch for this worker unless it is finished or another worker's lease runs."""
    at = now()
    result = conn.execute(
        update(t.batches)
        .where(
            t.batches.c.id == batch_id,
            t.batches.c.status.in_(UNFINISHED),
            or_(t.batches.c.lease_until.is_(None), t.batches.c.lease_until < at),
        )
        .values(
            status="running",
            lease_until=at + timedelta(seconds=lease_seconds),
            attempts=t.batches.c.attempts + 1,
            updated_at=at,
        )
    )
    return result.rowcount == 1


def pending_positions(conn: Connection, batch_id: str) -> set[int]:
    return set(
        conn.execute(
            select(t.batch_items.c.position).where(
                t.batch_items.c.batch_id == batch_id, t.batch_items.c.status == "pending"
            )
        ).scalars()
    )


def record_items(conn: Connection, batch_id: str, results: Sequence[dict[str, Any]]) -> None:
    """Write item results; an item already decided keeps its first result."""
    for r in results:
        conn.execute(
            update(t.batch_items)
            .where(
                t.batch_items.c.batch_id == batch_id,
                t.batch_items.c.position == r["position"],
                t.batch_items.c.status == "pending",
            )
            .values(**{k: v for k, v in r.items() if k != "position"})
        )


def counts(conn: Connection, batch_id: str) -> dict[str, int]:
    """Items by status."""
    rows = conn.execute(
        select(t.batch_items.c.status, func.count())
        .where(t.batch_items.c.batch_id == batch_id)
        .group_by(t.batch_items.c.status)
    ).all()
    return {str(status): int(n) for status, n in rows}


def update_batch(conn: Connection, batch_id: str, **values: Any) -> None:
    conn.execute(
        update(t.batches).where(t.batches.c.id == batch_id).values(updated_at=now(), **values)
    )


def items_of(
    conn: Connection, batch_id: str, *, after: int, limit: int, status: str | None
) -> list[RowMapping]:
    stmt = select(t.batch_items).where(
        t.batch_items.c.batch_id == batch_id, t.batch_items.c.position > after
    )
    if status:
        stmt = stmt.where(t.batch_items.c.status == status)
    return list(conn.execute(stmt.order_by(t.batch_items.c.position).limit(limit)).mappings())


def due_batch_ids(conn: Connection, at: datetime, limit: int) -> list[str]:
    """Unfinished batches nobody holds a lease on, whose time for a look has come."""
    return list(
        conn.execute(
            select(t.batches.c.id)
            .where(
                t.batches.c.status.in_(UNFINISHED),
                t.batches.c.requeue_at <= at,
                or_(t.batches.c.lease_until.is_(None), t.batches.c.lease_until < at),
            )
            .order_by(t.batches.c.requeue_at)
            .limit(limit)
        ).scalars()
    )


def postpone_batches(conn: Connection, ids: Sequence[str], until: datetime) -> None:
    if ids:
        conn.execute(
            update(t.batches)
            .where(and_(t.batches.c.id.in_(list(ids)), t.batches.c.status.in_(UNFINISHED)))
            .values(requeue_at=until)
        )
