"""Read-only queries behind the operator's export: declarations with their authorities."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from gateway.persistence import tables as t

PAGE = 1000


def declarations_for_export(
    conn: Connection,
    *,
    org_id: str | None,
    status: str | None,
    message_type: str | None,
    since: datetime | None,
    until: datetime | None,
) -> Iterator[dict[str, Any]]:
    """Declarations oldest first, each with ``authorities`` {name: code}; paged by id so a
    large export never holds the whole table in memory."""
    d = t.declarations
    after = ""
    while True:
        stmt = select(d, t.organisations.c.name.label("org_name")).join(t.organisations)
        stmt = stmt.where(d.c.id > after)
        if org_id:
            stmt = stmt.where(d.c.org_id == org_id)
        if status:
            stmt = stmt.where(d.c.status == status)
        if message_type:
            stmt = stmt.where(d.c.type == message_type)
        if since:
            stmt = stmt.where(d.c.created_at >= since)
        if until:
            stmt = stmt.where(d.c.created_at < until)
        rows = [dict(r) for r in conn.execute(stmt.order_by(d.c.id).limit(PAGE)).mappings()]
        if not rows:
            return
        codes: dict[str, dict[str, str | None]] = {r["id"]: {} for r in rows}
        a = t.authority_statuses
        for s in conn.execute(
            select(a.c.declaration_id, a.c.authority, a.c.code).where(
                a.c.declaration_id.in_(list(codes))
            )
        ):
            codes[s.declaration_id][s.authority] = s.code
        for r in rows:
            r["authorities"] = codes[r["id"]]
            yield r
        after = rows[-1]["id"]
