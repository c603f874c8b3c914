"""Reads and writes of declarations, messages, events, dispatches and receipts (Core SQL).

Every function takes an open ``Connection`` so the caller decides the transaction: the
accept path writes message, declarations, events and dispatches in one commit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import (
    Connection,
    String,
    and_,
    bindparam,
    cast,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import postgresql as postgresql_dml
from sqlalchemy.dialects import sqlite as sqlite_dml
from sqlalchemy.engine import RowMapping

from gateway.domain.access import Viewer
from gateway.domain.privacy import redact_text
from gateway.logs import current_request_id
from gateway.persistence import tables as t
from gateway.persistence.data_keys import open_blob, ring_for
from gateway.persistence.visibility import set_org_codes, visible_to


def now() -> datetime:
    return datetime.now(UTC)


def as_utc(value: datetime | None) -> datetime | None:
    """SQLite returns naive datetimes; they are stored in UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


# --- organisations and keys -------------------------------------------------------------


def find_org_by_key_hash(conn: Connection, key_hash: str) -> RowMapping | None:
    """The organisation and role owning an unrevoked API key, or None."""
    row = (
        conn.execute(
            select(t.organisations, t.api_keys.c.role, t.api_keys.c.id.label("key_id"))
            .join(t.api_keys, t.api_keys.c.org_id == t.organisations.c.id)
            .where(t.api_keys.c.key_hash == key_hash, t.api_keys.c.revoked_at.is_(None))
        )
        .mappings()
        .first()
    )
    return row


def find_org_by_name(conn: Connection, name: str) -> RowMapping | None:
    return (
        conn.execute(select(t.organisations).where(t.organisations.c.name == name))
        .mappings()
        .first()
    )


_ORG_DXP_ID = select(t.organisations.c.dxp_id).where(t.organisations.c.id == bindparam("b_id"))


def org_dxp_id(conn: Connection, org_id: str) -> str:
    """The DXP id an organisation sends under."""
    return str(conn.execute(_ORG_DXP_ID, {"b_id": org_id}).scalar_one())


def insert_org(conn: Connection, org_id: str, name: str, codes: list[str], dxp_id: str) -> None:
    conn.execute(
        insert(t.organisations).values(
            id=org_id, name=name, codes=codes, dxp_id=dxp_id, created_at=now()
        )
    )
    set_org_codes(conn, org_id, codes)  # what the visibility rule reads


def insert_api_key(
    conn: Connection, key_id: str, org_id: str, key_hash: str, prefix: str, role: str
) -> None:
    conn.execute(
        insert(t.api_keys).values(
            id=key_id, org_id=org_id, key_hash=key_hash, prefix=prefix, role=role, created_at=now()
        )
    )


def key_hash_exists(conn: Connection, key_hash: str) -> bool:
    return (
        conn.execute(select(t.api_keys.c.id).where(t.api_keys.c.key_hash == key_hash)).first()
        is not None
    )


# --- messages and declarations ------------------------------------------------------------


_MESSAGE_BY_IDEMPOTENCY_KEY = select(
    t.messages.c.id, t.messages.c.body_hash, t.messages.c.type
).where(
    t.messages.c.org_id == bindparam("b_org"), t.messages.c.idempotency_key == bindparam("b_key")
)


def find_message_by_idempotency_key(conn: Connection, org_id: str, key: str) -> RowMapping | None:
    params = {"b_org": org_id, "b_key": key}
    return conn.execute(_MESSAGE_BY_IDEMPOTENCY_KEY, params).mappings().first()


# The accept path's lookups, built once (see _GET_DECLARATION below for why).
_MESSAGE_BY_GUID = select(t.messages.c.id, t.messages.c.org_id, t.messages.c.type).where(
    t.messages.c.guid == bindparam("b_guid")
)
_DECLARATIONS_BY_GUID = select(
    t.declarations.c.id, t.declarations.c.doc_guid, t.declarations.c.org_id
).where(
    t.declarations.c.type == bindparam("b_type"),
    t.declarations.c.doc_guid.in_(bindparam("b_guids", expanding=True)),
)
_ACTIVE_BY_BUSINESS_KEYS = select(
    t.declarations.c.id,
    t.declarations.c.business_key,
    t.declarations.c.status,
    t.declarations.c.type,
    t.declarations.c.created_at,
).where(
    t.declarations.c.business_key.in_(bindparam("b_keys", expanding=True)),
    t.declarations.c.status.not_in(("rejected", "cancelled")),
)


_MESSAGES_BY_IDEMPOTENCY_KEYS = select(
    t.messages.c.id, t.messages.c.body_hash, t.messages.c.idempotency_key
).where(
    t.messages.c.org_id == bindparam("b_org"),
    t.messages.c.idempotency_key.in_(bindparam("b_keys", expanding=True)),
)
_MESSAGES_BY_GUIDS = select(t.messages.c.guid).where(
    t.messages.c.guid.in_(bindparam("b_guids", expanding=True))
)


def messages_by_idempotency_keys(
    conn: Connection, org_id: str, keys: Sequence[str]
) -> dict[str, RowMapping]:
    """An organisation's messages made under any of these keys, by key (one lookup)."""
    if not keys:
        return {}
    params = {"b_org": org_id, "b_keys": list(keys)}
    return {
        r["idempotency_key"]: r
        for r in conn.execute(_MESSAGES_BY_IDEMPOTENCY_KEYS, params).mappings()
    }


def declared_guids(conn: Connection, guids: Sequence[str]) -> set[str]:
    """Which of these message guids were declared before (one lookup)."""
    if not guids:
        return set()
    return {r[0] for r in conn.execute(_MESSAGES_BY_GUIDS, {"b_guids": list(guids)})}


def find_message_by_guid(conn: Connection, guid: str) -> RowMapping | None:
    return conn.execute(_MESSAGE_BY_GUID, {"b_guid": guid}).mappings().first()


def find_declarations_by_guid(
    conn: Connection, message_type: str, guids: Sequence[str]
) -> list[RowMapping]:
    params = {"b_type": message_type, "b_guids": list(guids)}
    return list(conn.execute(_DECLARATIONS_BY_GUID, params).mappings())


def find_active_by_business_keys(conn: Connection, keys: Sequence[str]) -> list[RowMapping]:
    """Declarations still open (not rejected or cancelled) under these business keys."""
    if not keys:
        return []
    return list(conn.execute(_ACTIVE_BY_BUSINESS_KEYS, {"b_keys": list(keys)}).mappings())


def max_phase(conn: Connection, declaration_id: str) -> int:
    """The furthest phase any authority has reached for a declaration."""
    value = conn.execute(
        select(func.max(t.authority_statuses.c.phase)).where(
            t.authority_statuses.c.declaration_id == declaration_id
        )
    ).scalar()
    return int(value or 0)


_DECLARATIONS_OF_MESSAGE = (
    select(t.declarations)
    .where(t.declarations.c.message_id == bindparam("b_id"))
    .order_by(t.declarations.c.position)
)


def declarations_of_message(conn: Connection, message_id: str) -> list[RowMapping]:
    return list(conn.execute(_DECLARATIONS_OF_MESSAGE, {"b_id": message_id}).mappings())


_INSERT_MESSAGE = insert(t.messages)
# Inserts of the hot paths, built once; each runs with its rows as parameters.
_INSERT = {
    table.name: insert(table)
    for table in (
        t.declarations,
        t.declaration_numbers,
        t.authority_statuses,
        t.events,
        t.dispatches,
        t.receipts,
        t.port_events,
        t.joint_inspections,
        t.quota_ledger,
    )
}


def insert_messages(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Store messages (one statement); their raw and signed XML (personal data) are sealed
    at rest."""
    ring, at = ring_for(conn), now()
    sealed = [
        {
            "created_at": at,
            **values,
            **{
                column: ring.seal(values[column], f"messages.{column}:{values['id']}")
                for column in ("raw_xml", "signed_xml")
            },
        }
        for values in rows
    ]
    if sealed:
        conn.execute(_INSERT_MESSAGE, sealed)


def insert_declarations(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(_INSERT["declarations"], rows)


def insert_declaration_numbers(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """The in-document numbers (payTransactionId, barCode) a trace looks up."""
    if rows:
        conn.execute(_INSERT["declaration_numbers"], rows)


def insert_authority_statuses(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(_INSERT["authority_statuses"], rows)


def _redacted(values: dict[str, Any], field: str) -> dict[str, Any]:
    """Free text from authorities and errors: ID card and mobile numbers never stored."""
    text = values.get(field)
    return {**values, field: redact_text(text)} if isinstance(text, str) else values


def insert_events(conn: Connection, rows: list[dict[str, Any]]) -> None:
    if rows:
        conn.execute(_INSERT["events"], [_redacted(r, "info") for r in rows])


# The hot path's statements are built once, with bind parameters: building a statement
# costs more than running it on SQLite (see `make bench`, the receipts path).
_GET_DECLARATION = select(t.declarations).where(t.declarations.c.id == bindparam("b_id"))
_GET_DECLARATION_LOCKED = _GET_DECLARATION.with_for_update()
_BY_DOC_GUID = select(t.declarations).where(
    t.declarations.c.type == bindparam("b_type"), t.declarations.c.doc_guid == bindparam("b_guid")
)
_BY_DOC_GUID_LOCKED = _BY_DOC_GUID.with_for_update()
_UPDATE_DECLARATION = update(t.declarations).where(t.declarations.c.id == bindparam("b_id"))
_AUTHORITY_ROWS = (
    select(t.authority_statuses)
    .where(t.authority_statuses.c.declaration_id == bindparam("b_id"))
    .order_by(t.authority_statuses.c.authority)
)
_UPDATE_AUTHORITY = update(t.authority_statuses).where(
    t.authority_statuses.c.declaration_id == bindparam("b_id"),
    t.authority_statuses.c.authority == bindparam("b_authority"),
)


def get_declaration(
    conn: Connection, declaration_id: str, *, for_update: bool = False
) -> RowMapping | None:
    stmt = _GET_DECLARATION_LOCKED if for_update else _GET_DECLARATION
    return conn.execute(stmt, {"b_id": declaration_id}).mappings().first()


def find_by_invt_no(conn: Connection, message_type: str, invt_no: str) -> RowMapping | None:
    """The declaration customs numbered ``invt_no`` (locked for the caller's update)."""
    return (
        conn.execute(
            select(t.declarations)
            .where(t.declarations.c.type == message_type, t.declarations.c.invt_no == invt_no)
            .with_for_update()
        )
        .mappings()
        .first()
    )


def find_declaration_by_doc_guid(
    conn: Connection, message_type: str, guid: str, *, for_update: bool = False
) -> RowMapping | None:
    stmt = _BY_DOC_GUID_LOCKED if for_update else _BY_DOC_GUID
    return conn.execute(stmt, {"b_type": message_type, "b_guid": guid}).mappings().first()


def update_declaration(conn: Connection, declaration_id: str, **values: Any) -> None:
    conn.execute(_UPDATE_DECLARATION, {"b_id": declaration_id, "updated_at": now(), **values})


def authority_rows(conn: Connection, declaration_id: str) -> list[RowMapping]:
    return list(conn.execute(_AUTHORITY_ROWS, {"b_id": declaration_id}).mappings())


def update_authority_status(
    conn: Connection, declaration_id: str, authority: str, **values: Any
) -> None:
    conn.execute(
        _UPDATE_AUTHORITY,
        {
            "b_id": declaration_id,
            "b_authority": authority,
            "updated_at": now(),
            **_redacted(values, "info"),
        },
    )


def events_of(conn: Connection, declaration_id: str) -> list[RowMapping]:
    return list(
        conn.execute(
            select(t.events)
            .where(t.events.c.declaration_id == declaration_id)
            .order_by(t.events.c.id)
        ).mappings()
    )


@dataclass(frozen=True)
class DeclarationFilter:
    """What a list of declarations is narrowed to (every field optional)."""

    status: tuple[str, ...] = ()
    message_type: str | None = None
    authority_status: str | None = None  # a receipt code any authority currently has
    since: datetime | None = None  # created at or after
    until: datetime | None = None  # created before
    code: str | None = None  # a registered code appearing in the declaration
    q: str | None = None  # a substring of orderNo, logisticsNo, invtNo, preNo or copNo


def _like(value: str) -> str:
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _narrowed(stmt: Any, viewer: Viewer | str, f: DeclarationFilter) -> Any:
    d = t.declarations.c
    stmt = stmt.where(visible_to(viewer))
    if f.status:
        stmt = stmt.where(d.status.in_(f.status))
    if f.message_type:
        stmt = stmt.where(d.type == f.message_type)
    if f.authority_status:
        stmt = stmt.where(
            select(t.authority_statuses.c.declaration_id)
            .where(
                t.authority_statuses.c.declaration_id == d.id,
                t.authority_statuses.c.code == f.authority_status,
            )
            .exists()
        )
    if f.since is not None:
        stmt = stmt.where(d.created_at >= f.since)
    if f.until is not None:
        stmt = stmt.where(d.created_at < f.until)
    if f.code:
        # codes is a JSON list; its text holds each code quoted (codes are alphanumeric).
        stmt = stmt.where(cast(d.codes, String).like(_like(f'"{f.code}"'), escape="\\"))
    if f.q:
        pattern = _like(f.q.upper())
        columns = (d.order_no, d.logistics_no, d.invt_no, d.pre_no, d.cop_no)
        stmt = stmt.where(or_(*(func.upper(c).like(pattern, escape="\\") for c in columns)))
    return stmt


def list_declarations(
    conn: Connection,
    viewer: Viewer,
    *,
    status: str | None = None,
    message_type: str | None = None,
    before: str | None = None,
    limit: int = 50,
    where: DeclarationFilter | None = None,
) -> list[RowMapping]:
    f = where or DeclarationFilter()
    if status:
        f = replace(f, status=(status,))
    if message_type:
        f = replace(f, message_type=message_type)
    stmt = _narrowed(select(t.declarations), viewer, f)
    if before:
        stmt = stmt.where(t.declarations.c.id < before)
    return list(conn.execute(stmt.order_by(t.declarations.c.id.desc()).limit(limit)).mappings())


def count_by_status(
    conn: Connection, viewer: Viewer | str, where: DeclarationFilter | None = None
) -> dict[str, int]:
    """How many visible declarations have each status (the status filter itself ignored)."""
    f = replace(where or DeclarationFilter(), status=())
    stmt = _narrowed(select(t.declarations.c.status, func.count()), viewer, f).group_by(
        t.declarations.c.status
    )
    return {r[0]: int(r[1]) for r in conn.execute(stmt)}


_GET_MESSAGE = select(t.messages).where(t.messages.c.id == bindparam("b_id"))


def get_message(conn: Connection, message_id: str) -> dict[str, Any] | None:
    """A message with its raw and signed XML opened: the exact bytes that were stored."""
    row = conn.execute(_GET_MESSAGE, {"b_id": message_id}).mappings().first()
    if row is None:
        return None
    out = dict(row)
    for column in ("raw_xml", "signed_xml"):
        out[column] = open_blob(conn, row[column], f"messages.{column}:{message_id}")
    return out


# --- dispatches (the outbox) -------------------------------------------------------------


_DISPATCH_DEFAULTS = {
    "kind": "declaration",
    "declaration_id": None,
    "msg_type": None,
    "payload": None,
}


def insert_dispatches(conn: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert dispatch rows; every row gets every column (an executemany takes the first
    row's keys for all of them, which would silently drop a later row's payload). Each
    remembers the request that caused it (the log context), so its delivery logs say so."""
    if rows:
        caused_by = {"request_id": current_request_id()}
        rows = [{**_DISPATCH_DEFAULTS, **caused_by, **r} for r in rows]
        conn.execute(_INSERT["dispatches"], rows)


def due_dispatch_ids(conn: Connection, at: datetime, limit: int) -> list[str]:
    """Dispatches to (re-)enqueue: pending and due, or sending with an expired lease."""
    stmt = (
        select(t.dispatches.c.id)
        .where(
            or_(
                and_(t.dispatches.c.state == "pending", t.dispatches.c.next_attempt_at <= at),
                and_(t.dispatches.c.state == "sending", t.dispatches.c.lease_until < at),
            )
        )
        .order_by(t.dispatches.c.next_attempt_at)
        .limit(limit)
    )
    return [r[0] for r in conn.execute(stmt)]


def postpone_dispatches(conn: Connection, ids: Iterable[str], until: datetime) -> None:
    """After enqueueing: don't enqueue again until ``until`` unless a worker claims them."""
    ids = list(ids)
    if ids:
        conn.execute(
            update(t.dispatches)
            .where(t.dispatches.c.id.in_(ids), t.dispatches.c.state == "pending")
            .values(next_attempt_at=until)
        )


# One statement: the conditional update answers with the attempt it made (RETURNING).
_CLAIM_DISPATCH = (
    update(t.dispatches)
    .where(
        t.dispatches.c.id == bindparam("b_id"),
        or_(
            t.dispatches.c.state == "pending",
            and_(t.dispatches.c.state == "sending", t.dispatches.c.lease_until < bindparam("b_at")),
        ),
    )
    .values(state="sending", lease_until=bindparam("b_until"), attempts=t.dispatches.c.attempts + 1)
    .returning(t.dispatches.c.attempts)
)


def claim_dispatch(
    conn: Connection, dispatch_id: str, at: datetime, lease: timedelta
) -> int | None:
    """Take the dispatch for one attempt; returns the attempt number, or None if not ours."""
    attempts = conn.execute(
        _CLAIM_DISPATCH, {"b_id": dispatch_id, "b_at": at, "b_until": at + lease}
    ).scalar()
    return None if attempts is None else int(attempts)


_GET_DISPATCH = select(t.dispatches).where(t.dispatches.c.id == bindparam("b_id"))


def get_dispatch(conn: Connection, dispatch_id: str) -> RowMapping | None:
    return conn.execute(_GET_DISPATCH, {"b_id": dispatch_id}).mappings().first()


_FINISH_ATTEMPT: dict[tuple[str, ...], Any] = {}  # by the columns set, built at first use


def _finish_attempt_statement(columns: tuple[str, ...]) -> Any:
    """One statement per set of columns an outcome writes (sent, retry and failed each set
    their own), built once: building it cost more than running it."""
    statement = _FINISH_ATTEMPT.get(columns)
    if statement is None:
        statement = _FINISH_ATTEMPT[columns] = (
            update(t.dispatches)
            .where(
                t.dispatches.c.id == bindparam("b_id"),
                t.dispatches.c.attempts == bindparam("b_attempt"),
                t.dispatches.c.state == "sending",
            )
            .values({c: bindparam(f"v_{c}") for c in columns})
        )
    return statement


def finish_attempt(conn: Connection, dispatch_id: str, attempt: int, **values: Any) -> bool:
    """Record the outcome of our own attempt only (a stale worker's write is dropped)."""
    values = _redacted(values, "last_error")
    columns = tuple(sorted(values))
    params = {f"v_{c}": values[c] for c in columns}
    result = conn.execute(
        _finish_attempt_statement(columns), {"b_id": dispatch_id, "b_attempt": attempt, **params}
    )
    return result.rowcount == 1


_DISPATCH_STATES = select(t.dispatches.c.authority, t.dispatches.c.state).where(
    t.dispatches.c.message_id == bindparam("b_id"), t.dispatches.c.kind == "declaration"
)


def dispatch_states(conn: Connection, message_id: str) -> dict[str, str]:
    return {r[0]: r[1] for r in conn.execute(_DISPATCH_STATES, {"b_id": message_id})}


# --- receipts --------------------------------------------------------------------------


_RECEIPT_SEEN = select(t.receipts.c.id).where(t.receipts.c.fingerprint == bindparam("b_fp"))
_PORT_EVENT_SEEN = select(t.port_events.c.id).where(
    t.port_events.c.fingerprint == bindparam("b_fp")
)


def receipt_seen(conn: Connection, fingerprint: str) -> bool:
    return conn.execute(_RECEIPT_SEEN, {"b_fp": fingerprint}).first() is not None


def insert_receipt(conn: Connection, **values: Any) -> None:
    """Store a receipt entry; the message it came in is kept once (keep_inbound)."""
    conn.execute(_INSERT["receipts"], {"received_at": now(), **values})


def inbound_digest(raw: bytes) -> str:
    """The name of an inbound message: the SHA-256 of its signed bytes."""
    return hashlib.sha256(raw).hexdigest()


_INBOUND_SETTLED = select(t.inbound_messages.c.digest).where(
    t.inbound_messages.c.digest == bindparam("b_digest"), t.inbound_messages.c.settled.is_(True)
)


def inbound_settled(conn: Connection, raw: bytes) -> bool:
    """Whether this exact inbound message was applied whole before (nothing in it waits)."""
    return conn.execute(_INBOUND_SETTLED, {"b_digest": inbound_digest(raw)}).first() is not None


_SETTLE_INBOUND = (
    update(t.inbound_messages)
    .where(t.inbound_messages.c.digest == bindparam("b_digest"))
    .values(settled=True)
)
_KEEP_INBOUND = {
    "sqlite": sqlite_dml.insert(t.inbound_messages).on_conflict_do_nothing(),
    "postgresql": postgresql_dml.insert(t.inbound_messages).on_conflict_do_nothing(),
}


def settle_inbound(conn: Connection, digest: str) -> None:
    """Mark a kept message applied whole: the same bytes again are answered at once."""
    conn.execute(_SETTLE_INBOUND, {"b_digest": digest})


def keep_inbound(conn: Connection, authority: str, message_type: str, raw: bytes) -> str:
    """Keep a signed inbound message once (sealed, bound to its digest); returns the digest
    its receipts and port events name. The same message again is a no-op, even racing."""
    digest = inbound_digest(raw)
    values = dict(
        digest=digest,
        authority=authority,
        message_type=message_type[:20],
        raw_xml=ring_for(conn).seal(raw, f"inbound_messages.raw_xml:{digest}"),
        received_at=now(),
        settled=False,
    )
    dialect = conn.dialect.name
    if dialect in _KEEP_INBOUND:
        conn.execute(_KEEP_INBOUND[dialect], values)
    elif (
        conn.execute(
            select(t.inbound_messages.c.digest).where(t.inbound_messages.c.digest == digest)
        ).first()
        is None
    ):
        conn.execute(insert(t.inbound_messages).values(**values))
    return digest


# --- port ------------------------------------------------------------------------------


# Built once: every submission routed to the port asks.
_ARRIVALS_OF = (
    select(t.port_events.c.logistics_no, func.min(t.port_events.c.at))
    .where(
        t.port_events.c.kind == "arrival",
        t.port_events.c.logistics_no.in_(bindparam("b_nos", expanding=True)),
    )
    .group_by(t.port_events.c.logistics_no)
)


def arrivals_of(conn: Connection, logistics_nos: Sequence[str]) -> dict[str, datetime]:
    """When the port reported each consignment's arrival (only those that arrived)."""
    if not logistics_nos:
        return {}
    rows = conn.execute(_ARRIVALS_OF, {"b_nos": list(logistics_nos)})
    return {r[0]: as_utc(r[1]) for r in rows}  # type: ignore[misc]


def port_event_seen(conn: Connection, fingerprint: str) -> bool:
    return conn.execute(_PORT_EVENT_SEEN, {"b_fp": fingerprint}).first() is not None


def insert_port_event(conn: Connection, **values: Any) -> None:
    conn.execute(_INSERT["port_events"], {"received_at": now(), **values})


def open_declarations_by_logistics_no(
    conn: Connection, logistics_no: str, types: Sequence[str]
) -> list[RowMapping]:
    """Declarations of a consignment that are still in play (for port events)."""
    return list(
        conn.execute(
            select(t.declarations)
            .where(
                t.declarations.c.logistics_no == logistics_no,
                t.declarations.c.type.in_(types),
                t.declarations.c.status.not_in(("rejected", "cancelled")),
            )
            .with_for_update()
        ).mappings()
    )


# --- joint inspections -----------------------------------------------------------------


def joint_inspection_of(conn: Connection, declaration_id: str) -> RowMapping | None:
    return (
        conn.execute(
            select(t.joint_inspections).where(
                t.joint_inspections.c.declaration_id == declaration_id
            )
        )
        .mappings()
        .first()
    )


def insert_joint_inspection(conn: Connection, **values: Any) -> None:
    conn.execute(_INSERT["joint_inspections"], values)


def update_joint_inspection(conn: Connection, declaration_id: str, **values: Any) -> None:
    conn.execute(
        update(t.joint_inspections)
        .where(t.joint_inspections.c.declaration_id == declaration_id)
        .values(**values)
    )


# --- poll cursors ----------------------------------------------------------------------


def poll_cursor(conn: Connection, source: str) -> int:
    value = conn.execute(
        select(t.poll_cursors.c.cursor).where(t.poll_cursors.c.source == source)
    ).scalar()
    return int(value or 0)


def save_poll_cursor(conn: Connection, source: str, cursor: int) -> None:
    done = conn.execute(
        update(t.poll_cursors)
        .where(t.poll_cursors.c.source == source)
        .values(cursor=cursor, updated_at=now())
    )
    if done.rowcount == 0:
        conn.execute(insert(t.poll_cursors).values(source=source, cursor=cursor, updated_at=now()))


# --- quota ledger ----------------------------------------------------------------------


def quota_entry_exists(conn: Connection, declaration_id: str, kind: str) -> bool:
    return (
        conn.execute(
            select(t.quota_ledger.c.id).where(
                t.quota_ledger.c.declaration_id == declaration_id, t.quota_ledger.c.kind == kind
            )
        ).first()
        is not None
    )


def insert_quota_entry(conn: Connection, **values: Any) -> None:
    conn.execute(_INSERT["quota_ledger"], values)
