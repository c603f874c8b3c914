"""The one visibility rule in SQL: which declarations a viewer may see (DESIGN.md §5).

Every read or action on declarations (get, list, signed, message, cancel, summaries) filters
with ``visible_to``; nothing else decides it. The parties of each declaration are written in
the declare transaction (one executemany), so the rule is an indexed lookup by code.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import ColumnElement, Connection, and_, delete, exists, insert, or_, select, true

from gateway.domain.access import Viewer
from gateway.persistence import tables as t

_d = t.declarations
_p = t.declaration_parties


def visible_to(who: Viewer | str, declarations: Any = _d) -> ColumnElement[bool]:
    """A WHERE clause: the declaration was submitted by the viewer's organisation, or one of
    its registered codes is a party to it (or the viewer sees everything). ``who`` is a
    Viewer (a request's caller: its codes are known) or just an organisation id (webhooks,
    feeds, exports: its codes are read from ``organisation_codes`` in the same query)."""
    if isinstance(who, str):
        own = declarations.c.org_id == who
        codes = t.organisation_codes
        # One probe of the parties' primary key per code of the organisation.
        party = exists(
            select(_p.c.declaration_id)
            .join(codes, codes.c.code == _p.c.code)
            .where(codes.c.org_id == who, _p.c.declaration_id == declarations.c.id)
        )
        return or_(own, party)
    if who.sees_all:
        return true()
    own = declarations.c.org_id == who.org_id
    if not who.codes:
        return own
    # Correlated: one primary-key probe per (code, declaration), so reading one declaration
    # costs the same whatever the number of declarations a code appears in.
    party = exists(
        select(_p.c.declaration_id).where(
            _p.c.code.in_(sorted(set(who.codes))), _p.c.declaration_id == declarations.c.id
        )
    )
    return or_(own, party)


# The name the events feed and webhooks use.
declarations_visible_to = visible_to


def set_org_codes(conn: Connection, org_id: str, codes: Iterable[str]) -> None:
    """Replace an organisation's rows in ``organisation_codes`` (kept with its ``codes``)."""
    conn.execute(delete(t.organisation_codes).where(t.organisation_codes.c.org_id == org_id))
    rows = [{"org_id": org_id, "code": c} for c in sorted({c.strip() for c in codes} - {""})]
    if rows:
        conn.execute(insert(t.organisation_codes), rows)


def viewer_of_org(conn: Connection, org_id: str) -> Viewer:
    """The viewer an organisation is when no request carries it, with its codes."""
    codes = conn.execute(
        select(t.organisations.c.codes).where(t.organisations.c.id == org_id)
    ).scalar()
    return Viewer(org_id, tuple(codes or ()))


def message_visible_to(viewer: Viewer, message_id: Any) -> ColumnElement[bool]:
    """True when the viewer sees every declaration of a message: its bytes (signed as one
    whole) carry all of them, so they are shown only to who may see each one."""
    if viewer.sees_all:
        return true()
    other = _d.alias("other")
    return ~exists(
        select(other.c.id).where(other.c.message_id == message_id, ~visible_to(viewer, other))
    )


def find_visible(
    conn: Connection, viewer: Viewer, declaration_id: str, *, whole_message: bool = False
) -> Mapping[str, Any] | None:
    """The declaration if the viewer may see it (and, with ``whole_message``, every other
    declaration of its message); None for foreign and missing alike."""
    where = and_(_d.c.id == declaration_id, visible_to(viewer))
    if whole_message:
        where = and_(where, message_visible_to(viewer, _d.c.message_id))
    return conn.execute(select(_d).where(where)).mappings().first()


def party_rows(declarations: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """The declaration_parties rows for freshly planned declarations (their ``codes``)."""
    return [
        {"code": code, "declaration_id": d["id"]}
        for d in declarations
        for code in sorted({c for c in d["codes"] if c})
    ]


def insert_parties(conn: Connection, declarations: Iterable[Mapping[str, Any]]) -> None:
    """Index the parties of new declarations (one executemany, in the caller's transaction)."""
    rows = party_rows(declarations)
    if rows:
        conn.execute(insert(_p), rows)
