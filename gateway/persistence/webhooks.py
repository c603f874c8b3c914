"""Reads and writes of webhooks, their deliveries (the outbox) and attempts (Core SQL).

A delivery is claimed like a dispatch: a conditional UPDATE with a lease, and only the attempt
that holds the claim may record the outcome. Deliveries are unique per (webhook, event).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Insert, and_, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import RowMapping

from gateway.persistence import tables as t

w, dl, att = t.webhooks, t.webhook_deliveries, t.webhook_attempts


# --- webhooks ----------------------------------------------------------------------------


def insert_webhook(conn: Connection, **values: Any) -> None:
    conn.execute(insert(w).values(**values))


def find_webhook(conn: Connection, org_id: str, webhook_id: str) -> RowMapping | None:
    """The organisation's live webhook, or None (another's is as absent as a deleted one)."""
    return (
        conn.execute(
            select(w).where(w.c.id == webhook_id, w.c.org_id == org_id, w.c.deleted_at.is_(None))
        )
        .mappings()
        .first()
    )


def list_webhooks(conn: Connection, org_id: str) -> list[RowMapping]:
    return list(
        conn.execute(
            select(w).where(w.c.org_id == org_id, w.c.deleted_at.is_(None)).order_by(w.c.id)
        ).mappings()
    )


def count_webhooks(conn: Connection, org_id: str) -> int:
    return int(
        conn.execute(
            select(func.count()).where(w.c.org_id == org_id, w.c.deleted_at.is_(None))
        ).scalar_one()
    )


def delete_webhook(conn: Connection, webhook_id: str, at: datetime) -> None:
    """Stop a webhook: nothing more is fanned out to it, and what waits is cancelled."""
    conn.execute(update(w).where(w.c.id == webhook_id).values(deleted_at=at))
    conn.execute(
        update(dl)
        .where(dl.c.webhook_id == webhook_id, dl.c.state == "pending")
        .values(state="cancelled", last_error="webhook deleted")
    )


def webhooks_behind(conn: Connection, upto: int, limit: int) -> list[RowMapping]:
    """Live webhooks whose cursor is behind ``upto``: those with events to fan out."""
    return list(
        conn.execute(
            select(w.c.id, w.c.org_id, w.c.events, w.c.cursor)
            .where(w.c.deleted_at.is_(None), w.c.cursor < upto)
            .order_by(w.c.cursor)
            .limit(limit)
        ).mappings()
    )


def advance_cursor(conn: Connection, webhook_id: str, old: int, new: int) -> bool:
    """Move the cursor only from where we read it (a concurrent fan-out loses)."""
    done = conn.execute(
        update(w)
        .where(w.c.id == webhook_id, w.c.cursor == old, w.c.deleted_at.is_(None))
        .values(cursor=new)
    )
    return done.rowcount == 1


# --- deliveries ----------------------------------------------------------------------------


def _insert_ignoring_duplicates(conn: Connection) -> Insert:
    if conn.dialect.name == "postgresql":
        return postgresql.insert(dl).on_conflict_do_nothing()
    if conn.dialect.name == "sqlite":
        return sqlite.insert(dl).on_conflict_do_nothing()
    return insert(dl)  # the unique constraint still refuses a second one


def insert_deliveries(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert deliveries; one that exists for its (webhook, event) is left as it was."""
    if rows:
        conn.execute(_insert_ignoring_duplicates(conn), rows)


def due_delivery_ids(conn: Connection, at: datetime, limit: int) -> list[str]:
    """Deliveries to (re-)enqueue: pending and due, or sending with an expired lease."""
    stmt = (
        select(dl.c.id)
        .where(
            or_(
                and_(dl.c.state == "pending", dl.c.next_attempt_at <= at),
                and_(dl.c.state == "sending", dl.c.lease_until < at),
            )
        )
        .order_by(dl.c.next_attempt_at)
        .limit(limit)
    )
    return [r[0] for r in conn.execute(stmt)]


def postpone_deliveries(conn: Connection, ids: Iterable[str], until: datetime) -> None:
    """After enqueueing: not again until ``until`` unless a worker claims them first."""
    ids = list(ids)
    if ids:
        conn.execute(
            update(dl)
            .where(dl.c.id.in_(ids), dl.c.state == "pending")
            .values(next_attempt_at=until)
        )


def claim_delivery(
    conn: Connection, delivery_id: str, at: datetime, lease: timedelta
) -> int | None:
    """Take the delivery for one attempt; returns the attempt number, or None if not ours."""
    result = conn.execute(
        update(dl)
        .where(
            dl.c.id == delivery_id,
            or_(dl.c.state == "pending", and_(dl.c.state == "sending", dl.c.lease_until < at)),
        )
        .values(state="sending", lease_until=at + lease, attempts=dl.c.attempts + 1)
    )
    if result.rowcount != 1:
        return None
    return int(conn.execute(select(dl.c.attempts).where(dl.c.id == delivery_id)).scalar_one())


def get_delivery(conn: Connection, delivery_id: str) -> RowMapping | None:
    """A delivery with its webhook's url, secret and whether it was deleted."""
    return (
        conn.execute(
            select(dl, w.c.url, w.c.secret, w.c.deleted_at.label("webhook_deleted_at"))
            .join(w, w.c.id == dl.c.webhook_id)
            .where(dl.c.id == delivery_id)
        )
        .mappings()
        .first()
    )


def finish_delivery(conn: Connection, delivery_id: str, attempt: int, **values: Any) -> bool:
    """Record the outcome of our own attempt only (a stale worker's write is dropped)."""
    result = conn.execute(
        update(dl)
        .where(dl.c.id == delivery_id, dl.c.attempts == attempt, dl.c.state == "sending")
        .values(lease_until=None, **values)
    )
    return result.rowcount == 1


def insert_attempt(conn: Connection, **values: Any) -> None:
    conn.execute(insert(att).values(**values))


def list_deliveries(
    conn: Connection, webhook_id: str, *, before: str | None, limit: int
) -> list[RowMapping]:
    """A webhook's deliveries, newest first (ids sort by creation)."""
    stmt = select(dl).where(dl.c.webhook_id == webhook_id)
    if before:
        stmt = stmt.where(dl.c.id < before)
    return list(conn.execute(stmt.order_by(dl.c.id.desc()).limit(limit)).mappings())


def attempts_of(conn: Connection, delivery_ids: list[str]) -> dict[str, list[RowMapping]]:
    """Every attempt of these deliveries, in order, keyed by delivery id."""
    out: dict[str, list[RowMapping]] = {d: [] for d in delivery_ids}
    if delivery_ids:
        rows = conn.execute(
            select(att)
            .where(att.c.delivery_id.in_(delivery_ids))
            .order_by(att.c.delivery_id, att.c.attempt)
        ).mappings()
        for r in rows:
            out[r["delivery_id"]].append(r)
    return out
