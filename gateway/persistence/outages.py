"""Reads and writes of planned outage notices, and holding dispatches until a window ends."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    ColumnElement,
    Connection,
    RowMapping,
    and_,
    bindparam,
    insert,
    or_,
    select,
    update,
)

from gateway.domain.outages import OutageNotice
from gateway.persistence import tables as t
from gateway.persistence.repository import as_utc

N = t.outage_notices
D = t.dispatches


def notice_of(row: RowMapping) -> OutageNotice:
    starts, ends = as_utc(row["starts_at"]), as_utc(row["ends_at"])
    assert starts is not None and ends is not None
    return OutageNotice(row["id"], row["authority"], starts, ends, row["note"])


def insert_notice(conn: Connection, **values: object) -> None:
    conn.execute(insert(N).values(**values))


_OPEN_NOTICES = (
    select(N)
    .where(N.c.cancelled_at.is_(None), N.c.ends_at > bindparam("b_at"))
    .order_by(N.c.starts_at)
)


def open_notices(conn: Connection, at: datetime) -> list[OutageNotice]:
    """Notices not cancelled and not yet over at ``at`` (upcoming or active); read by every
    delivery wave, so built once."""
    rows = conn.execute(_OPEN_NOTICES, {"b_at": at}).mappings()
    return [notice_of(r) for r in rows]


def all_notices(conn: Connection, limit: int = 200) -> list[RowMapping]:
    """Every notice, newest window first, with who announced it and whether it was cancelled."""
    return list(conn.execute(select(N).order_by(N.c.starts_at.desc()).limit(limit)).mappings())


def get_notice(conn: Connection, notice_id: str) -> RowMapping | None:
    return conn.execute(select(N).where(N.c.id == notice_id)).mappings().first()


def cancel_notice(conn: Connection, notice_id: str, at: datetime) -> bool:
    """Cancel a notice once; False when there is none or it was already cancelled."""
    result = conn.execute(
        update(N).where(N.c.id == notice_id, N.c.cancelled_at.is_(None)).values(cancelled_at=at)
    )
    return result.rowcount == 1


def to_hold(conn: Connection, authority: str, until: datetime, at: datetime) -> list[RowMapping]:
    """Dispatches to ``authority`` that would go out before ``until``: pending ones, and
    those whose delivery died with the lease expired."""
    rows = conn.execute(
        select(D.c.id, D.c.kind, D.c.message_id, D.c.declaration_id, D.c.authority).where(
            D.c.authority == authority, _holdable(until, at)
        )
    ).mappings()
    return list(rows)


def _holdable(until: datetime, at: datetime) -> ColumnElement[bool]:
    return or_(
        and_(D.c.state == "pending", D.c.next_attempt_at < until),
        and_(D.c.state == "sending", D.c.lease_until < at),
    )


def hold_dispatch(conn: Connection, dispatch_id: str, until: datetime, at: datetime) -> bool:
    """Make a dispatch wait until ``until`` (no attempt is counted); False when it is being
    sent, is done, or already waits that long."""
    result = conn.execute(
        update(D)
        .where(D.c.id == dispatch_id, _holdable(until, at))
        .values(state="pending", next_attempt_at=until, lease_until=None)
    )
    return result.rowcount == 1


def release_held(conn: Connection, authority: str, until: datetime, at: datetime) -> int:
    """A cancelled notice: dispatches waiting for its end (or less) may go out now."""
    result = conn.execute(
        update(D)
        .where(
            D.c.authority == authority,
            D.c.state == "pending",
            D.c.next_attempt_at > at,
            D.c.next_attempt_at <= until,
        )
        .values(next_attempt_at=at)
    )
    return int(result.rowcount)


def authorities_of_message(conn: Connection, message_id: str) -> set[str]:
    """The authorities a message's dispatches go to (which notices concern its sender)."""
    rows = conn.execute(select(D.c.authority).where(D.c.message_id == message_id).distinct())
    return set(rows.scalars())
