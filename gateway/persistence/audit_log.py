"""Audit trail storage: append under the chain head's row lock, read back in order.

The append is serialized by updating the single ``audit_head`` row first: on PostgreSQL the
row lock holds every other appender until this transaction ends; on SQLite the update takes
the database's write lock. Either way the next writer reads the committed head, so the
chain stays one line, and the primary key on ``seq`` would refuse a fork regardless.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from gateway.domain.audit import GENESIS, Actor, AuditEntry, StoredEntry
from gateway.persistence import tables as t

# Built once: the append runs on every declaration and receipt, so no per-call SQL building.
_CLAIM = (
    update(t.audit_head)
    .where(t.audit_head.c.id == 1)
    .values(seq=t.audit_head.c.seq + bindparam("count"))
    .returning(t.audit_head.c.seq)
)
_PREVIOUS = (
    select(t.audit_log.c.hash)
    .where(t.audit_log.c.seq < bindparam("seq"))
    .order_by(t.audit_log.c.seq.desc())
    .limit(1)
)
_INSERT = insert(t.audit_log)


def claim_next(conn: Connection, count: int = 1) -> tuple[int, str]:
    """Take the chain head for this transaction and ``count`` entries: (the first new
    entry's seq, the previous hash)."""
    first = int(conn.execute(_CLAIM, {"count": count}).scalar_one()) - count + 1
    prev = conn.execute(_PREVIOUS, {"seq": first}).scalar()
    return first, str(prev) if prev else GENESIS


def insert_entries(conn: Connection, rows: list[tuple[AuditEntry, str, str]]) -> None:
    """Insert (entry, previous hash, hash) rows in one statement."""
    conn.execute(
        _INSERT,
        [
            {
                "seq": entry.seq,
                "at": entry.at,
                "actor": entry.actor.as_dict(),
                "action": entry.action,
                "objects": list(entry.objects),
                "details": dict(entry.details),
                "prev_hash": prev_hash,
                "hash": hash_,
            }
            for entry, prev_hash, hash_ in rows
        ],
    )


def head_seq(conn: Connection) -> int:
    """How many entries the chain head says were appended."""
    value = conn.execute(select(t.audit_head.c.seq).where(t.audit_head.c.id == 1)).scalar()
    return int(value or 0)


def _stored(row: Any) -> StoredEntry:
    entry = AuditEntry(
        seq=int(row["seq"]),
        at=row["at"],
        actor=Actor.from_dict(row["actor"]),
        action=row["action"],
        objects=tuple(row["objects"]),
        details=row["details"],
    )
    return StoredEntry(entry, row["prev_hash"], row["hash"])


def iter_entries(conn: Connection, batch: int = 1000) -> Iterator[StoredEntry]:
    """Every entry in seq order, read in batches (the log may be long)."""
    after: int | None = None
    while True:
        stmt = select(t.audit_log).order_by(t.audit_log.c.seq).limit(batch)
        if after is not None:
            stmt = stmt.where(t.audit_log.c.seq > after)
        rows = list(conn.execute(stmt).mappings())
        yield from (_stored(r) for r in rows)
        if len(rows) < batch:
            return
        after = int(rows[-1]["seq"])


def list_entries(
    conn: Connection,
    *,
    after: int = 0,
    limit: int = 100,
    action: str | None = None,
    object_id: str | None = None,
) -> list[StoredEntry]:
    """Entries after ``seq``, oldest first, optionally of one action (prefix) or object."""
    stmt = select(t.audit_log).where(t.audit_log.c.seq > after)
    if action:
        stmt = stmt.where(t.audit_log.c.action.startswith(action))
    stmt = stmt.order_by(t.audit_log.c.seq)
    if not object_id:
        stmt = stmt.limit(limit)
    rows = [_stored(r) for r in conn.execute(stmt).mappings()]
    if object_id:
        rows = [r for r in rows if object_id in r.entry.objects]
    return rows[:limit]
