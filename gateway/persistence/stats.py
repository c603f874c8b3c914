"""Counts for the metrics, read from the database at scrape time, so they are the same
whichever gunicorn or rq process answers, and survive restarts."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Connection, func, select

from gateway.persistence import tables as t
from gateway.persistence.repository import as_utc

D, R, DC = t.dispatches, t.receipts, t.declarations


def dispatch_counts(conn: Connection) -> list[tuple[str, str, str, int, int]]:
    """(authority, kind, state, dispatches, attempts) for every combination present."""
    rows = conn.execute(
        select(D.c.authority, D.c.kind, D.c.state, func.count(), func.sum(D.c.attempts)).group_by(
            D.c.authority, D.c.kind, D.c.state
        )
    )
    return [(a, k, s, int(n), int(att or 0)) for a, k, s, n, att in rows]


def oldest_waiting(conn: Connection) -> dict[str, datetime]:
    """Per authority, when its oldest dispatch not yet sent (pending or sending) was made."""
    rows = conn.execute(
        select(D.c.authority, func.min(D.c.created_at))
        .where(D.c.state.in_(("pending", "sending")))
        .group_by(D.c.authority)
    )
    out: dict[str, datetime] = {}
    for authority, oldest in rows:
        at = as_utc(oldest)
        if at is not None:
            out[authority] = at
    return out


def receipt_counts(conn: Connection) -> list[tuple[str, str, int]]:
    """(authority, returnStatus code, receipts) as received (duplicates are stored once)."""
    rows = conn.execute(
        select(R.c.authority, R.c.return_status, func.count()).group_by(
            R.c.authority, R.c.return_status
        )
    )
    return [(a, c, int(n)) for a, c, n in rows]


def declaration_counts(conn: Connection) -> list[tuple[str, str, int]]:
    """(message type, status, declarations)."""
    rows = conn.execute(
        select(DC.c.type, DC.c.status, func.count()).group_by(DC.c.type, DC.c.status)
    )
    return [(ty, st, int(n)) for ty, st, n in rows]
