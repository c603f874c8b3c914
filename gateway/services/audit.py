"""Record who did what in the audit trail, inside the transaction that does it.

``record`` is the one call the use cases make: it adds one entry to the hash chain in the
caller's transaction, so the entry commits (or rolls back) with the change it describes.
Call it last in the transaction: the chain head stays locked until the commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine

from gateway.domain.audit import Actor, AuditEntry, ChainBreak, chain_hash, verify_chain
from gateway.domain.privacy import PERSONAL_FIELDS, redact_text
from gateway.persistence import audit_log

SYSTEM = Actor("system", "gateway")


def _clean(details: Mapping[str, Any]) -> dict[str, Any]:
    """Details never carry personal data: no personal field names, numbers redacted."""
    out: dict[str, Any] = {}
    for key, value in details.items():
        if key in PERSONAL_FIELDS:
            raise ValueError(f"audit details must not carry personal data ({key})")
        out[key] = redact_text(value) if isinstance(value, str) else value
    return out


def record(
    conn: Connection,
    actor: Actor,
    action: str,
    objects: Iterable[str] = (),
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry (in the caller's transaction) and return it."""
    return record_many(conn, [Record(actor, action, tuple(objects), details)])[0]


@dataclass(frozen=True)
class Record:
    """One entry to append: who did what to which objects."""

    actor: Actor
    action: str
    objects: tuple[str, ...] = ()
    details: Mapping[str, Any] | None = None


def record_many(conn: Connection, records: list[Record]) -> list[AuditEntry]:
    """Append several entries in order (in the caller's transaction) with one claim of the
    chain head and one insert: a batch of declarations costs the chain two statements."""
    if not records:
        return []
    first, prev = audit_log.claim_next(conn, len(records))
    entries, rows = [], []
    for n, r in enumerate(records):
        at = datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
        entry = AuditEntry(first + n, at, r.actor, r.action, r.objects, _clean(r.details or {}))
        hash_ = chain_hash(entry, prev)
        rows.append((entry, prev, hash_))
        entries.append(entry)
        prev = hash_
    audit_log.insert_entries(conn, rows)
    return entries


def record_now(
    engine: Engine,
    actor: Actor,
    action: str,
    objects: Iterable[str] = (),
    details: Mapping[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in a transaction of its own (for actions outside the database)."""
    with engine.begin() as conn:
        return record(conn, actor, action, objects, details)


@dataclass(frozen=True)
class Verification:
    """The outcome of checking the whole chain."""

    entries: int
    head_seq: int
    head_hash: str | None
    first_break: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.first_break is None


def verify(engine: Engine) -> Verification:
    """Check every link of the chain, in one consistent read (a snapshot: appends that
    commit meanwhile are not half-seen)."""
    snapshot = {"isolation_level": "REPEATABLE READ"} if engine.dialect.name == "postgresql" else {}
    with engine.connect().execution_options(**snapshot) as conn, conn.begin():
        head = audit_log.head_seq(conn)
        last: list[str] = []

        def tracked() -> Iterable[Any]:
            for s in audit_log.iter_entries(conn):
                last[:] = [s.hash]
                yield s

        count, broken = verify_chain(tracked(), head)
    return Verification(count, head, last[0] if last else None, broken)
