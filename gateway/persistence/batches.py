"""Reads and writes of bulk uploads (batches) and their per-item results (Core SQL)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping

from gateway.persistence import tables as t
from gateway.persistence.data_keys import open_blob, ring_for
from gateway.persistence.repository import now

UNFINISHED = ("queued", "running")
_SUMMARY = [c for c in t.batches.c if c.name != "upload"]


def insert_batch(
    conn: Connection,
    items: Sequence[dict[str, Any]],
    chunks: Sequence[dict[str, Any]],
    **values: Any,
) -> None:
    """The batch row with its bytes (sealed: an upload holds buyers' personal data), one
    pending row per item, one queued row per chunk."""
    sealed = ring_for(conn).seal(values["upload"], f"batches.upload:{values['id']}")
    conn.execute(insert(t.batches).values(**{**values, "upload": sealed}))
    if items:
        conn.execute(
            insert(t.batch_items),
            [{"batch_id": values["id"], "status": "pending", **i} for i in items],
        )
    if chunks:
        conn.execute(
            insert(t.batch_chunks),
            [{"batch_id": values["id"], "status": "queued", "attempts": 0, **c} for c in chunks],
        )


def get_batch(conn: Connection, batch_id: str, *, with_upload: bool = False) -> RowMapping | None:
    """A batch (without its bytes unless asked), or None."""
    cols = list(t.batches.c) if with_upload else _SUMMARY
    row = conn.execute(select(*cols).where(t.batches.c.id == batch_id)).mappings().first()
    if row is None or not with_upload or not row["upload"]:
        return row
    opened = open_blob(conn, row["upload"], f"batches.upload:{batch_id}")
    return {**row, "upload": opened}  # type: ignore[return-value]


def find_batch_by_idempotency_key(conn: Connection, org_id: str, key: str) -> RowMapping | None:
    return (
        conn.execute(
            select(*_SUMMARY).where(
                t.batches.c.org_id == org_id, t.batches.c.idempotency_key == key
            )
        )
        .mappings()
        .first()
    )


def _chunk(batch_id: str, chunk: int) -> Any:
    return and_(t.batch_chunks.c.batch_id == batch_id, t.batch_chunks.c.chunk == chunk)


def lock_batch(conn: Connection, batch_id: str) -> None:
    """Serialise writers of one batch's counters and status (PostgreSQL; SQLite has one
    writer anyway)."""
    conn.execute(select(t.batches.c.id).where(t.batches.c.id == batch_id).with_for_update())


def claim_chunk(conn: Connection, batch_id: str, chunk: int, lease: float) -> RowMapping | None:
    """Take a chunk for this worker unless it is done or another worker's lease runs; the
    chunk (its positions) when taken, else None. The batch shows as running."""
    at = now()
    taken = conn.execute(
        update(t.batch_chunks)
        .where(
            _chunk(batch_id, chunk),
            t.batch_chunks.c.status.in_(UNFINISHED),
            or_(t.batch_chunks.c.lease_until.is_(None), t.batch_chunks.c.lease_until < at),
        )
        .values(
            status="running",
            lease_until=at + timedelta(seconds=lease),
            attempts=t.batch_chunks.c.attempts + 1,
        )
    ).rowcount
    if taken != 1:
        return None
    conn.execute(
        update(t.batches)
        .where(t.batches.c.id == batch_id, t.batches.c.status == "queued")
        .values(status="running", updated_at=at)
    )
    return conn.execute(select(t.batch_chunks).where(_chunk(batch_id, chunk))).mappings().first()


def renew_chunk(conn: Connection, batch_id: str, chunk: int, lease: float) -> None:
    conn.execute(
        update(t.batch_chunks)
        .where(_chunk(batch_id, chunk))
        .values(lease_until=now() + timedelta(seconds=lease))
    )


def release_chunk(conn: Connection, batch_id: str, chunk: int, retry_in: float) -> None:
    """Give a chunk back (a transient failure): the relay re-enqueues it after ``retry_in``."""
    conn.execute(
        update(t.batch_chunks)
        .where(_chunk(batch_id, chunk))
        .values(lease_until=None, requeue_at=now() + timedelta(seconds=retry_in))
    )


def finish_chunk(conn: Connection, batch_id: str, chunk: int) -> bool:
    """Mark a chunk done; the batch is done with its last chunk (True then)."""
    lock_batch(conn, batch_id)  # two last chunks finishing at once see each other
    conn.execute(
        update(t.batch_chunks)
        .where(_chunk(batch_id, chunk))
        .values(status="done", lease_until=None)
    )
    left = conn.execute(
        select(func.count()).where(
            t.batch_chunks.c.batch_id == batch_id, t.batch_chunks.c.status != "done"
        )
    ).scalar_one()
    if left:
        return False
    # The bytes were kept so nothing accepted could be lost; every item is now its own
    # declaration (or refusal), so the upload, buyers' personal data included, goes.
    update_batch(conn, batch_id, status="done", finished_at=now(), upload=b"")
    return True


def fail_batch(conn: Connection, batch_id: str, error: str) -> None:
    """A batch that can no longer be read: every chunk stops, the batch says why."""
    conn.execute(
        update(t.batch_chunks)
        .where(t.batch_chunks.c.batch_id == batch_id)
        .values(status="done", lease_until=None)
    )
    update_batch(conn, batch_id, status="failed", error=error, finished_at=now())


def pending_positions(conn: Connection, batch_id: str, first: int, last: int) -> set[int]:
    return set(
        conn.execute(
            select(t.batch_items.c.position).where(
                t.batch_items.c.batch_id == batch_id,
                t.batch_items.c.status == "pending",
                t.batch_items.c.position.between(first, last),
            )
        ).scalars()
    )


_RESULT_COLUMNS = (
    "status",
    "http_status",
    "title",
    "detail",
    "message_id",
    "declaration_ids",
    "errors",
    "processed_at",
)
# Built once and run as one executemany: a batch records its results a hundred at a time.
_RECORD_ITEM = (
    update(t.batch_items)
    .where(
        t.batch_items.c.batch_id == bindparam("b_batch"),
        t.batch_items.c.position == bindparam("b_position"),
        t.batch_items.c.status == "pending",
    )
    .values({c: bindparam(f"v_{c}") for c in _RESULT_COLUMNS})
)


def record_items(conn: Connection, batch_id: str, results: Sequence[dict[str, Any]]) -> None:
    """Write item results; an item already decided keeps its first result."""
    if results:
        conn.execute(
            _RECORD_ITEM,
            [
                {"b_batch": batch_id, "b_position": r["position"]}
                | {f"v_{c}": r.get(c) for c in _RESULT_COLUMNS}
                for r in results
            ],
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


def due_chunks(conn: Connection, at: datetime, limit: int) -> list[tuple[str, int]]:
    """Unfinished chunks nobody holds a lease on, whose time for a look has come."""
    rows = conn.execute(
        select(t.batch_chunks.c.batch_id, t.batch_chunks.c.chunk)
        .where(
            t.batch_chunks.c.status.in_(UNFINISHED),
            t.batch_chunks.c.requeue_at <= at,
            or_(t.batch_chunks.c.lease_until.is_(None), t.batch_chunks.c.lease_until < at),
        )
        .order_by(t.batch_chunks.c.requeue_at)
        .limit(limit)
    ).all()
    return [(str(b), int(c)) for b, c in rows]


def postpone_chunks(conn: Connection, chunks: Sequence[tuple[str, int]], until: datetime) -> None:
    for batch_id, chunk in chunks:
        conn.execute(
            update(t.batch_chunks)
            .where(_chunk(batch_id, chunk), t.batch_chunks.c.status.in_(UNFINISHED))
            .values(requeue_at=until)
        )


def chunks_of(conn: Connection, batch_id: str) -> list[int]:
    return list(
        conn.execute(
            select(t.batch_chunks.c.chunk)
            .where(t.batch_chunks.c.batch_id == batch_id)
            .order_by(t.batch_chunks.c.chunk)
        ).scalars()
    )


def list_batches(
    conn: Connection, org_id: str, *, before: str | None, limit: int
) -> list[RowMapping]:
    """An organisation's batches, newest first (ids sort by creation)."""
    stmt = select(*_SUMMARY).where(t.batches.c.org_id == org_id)
    if before:
        stmt = stmt.where(t.batches.c.id < before)
    return list(conn.execute(stmt.order_by(t.batches.c.id.desc()).limit(limit)).mappings())
