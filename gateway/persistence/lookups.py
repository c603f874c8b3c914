"""Reads for the dashboard and traceability: what needs action, daily activity, and every
declaration a business number leads to. Visibility is always ``repository.visible_to``."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, or_, select
from sqlalchemy.engine import RowMapping

from gateway.domain.access import Viewer
from gateway.persistence import tables as t
from gateway.persistence.repository import visible_to

ACTION_STATUSES = ("rejected", "inspection", "held")
OPEN_STATUSES = ("accepted", "submitted", "under_review")
# inventory list type -> partner role -> (partner type, the column that ties them)
PARTNERS = {
    "CEB621": {
        "order": ("CEB311", "order_no"),
        "payment": ("CEB411", "order_no"),
        "waybill": ("CEB511", "logistics_no"),
    },
    "CEB603": {
        "order": ("CEB303", "order_no"),
        "payment": ("CEB403", "order_no"),
        "waybill": ("CEB505", "logistics_no"),
    },
}
NUMBER_COLUMNS = ("order_no", "logistics_no", "invt_no", "pre_no", "cop_no")


def _partner_exists(inventory: Any, partner_type: str, column: str) -> Any:
    partner = t.declarations.alias("partner")
    return (
        select(partner.c.id)
        .where(
            partner.c.type == partner_type,
            partner.c[column] == inventory.c[column],
            partner.c.status.not_in(("rejected", "cancelled")),
        )
        .exists()
    )


def _missing_partner(list_type: str) -> Any:
    d = t.declarations
    roles = PARTNERS[list_type]
    return and_(
        d.c.type == list_type,
        d.c.status.in_(OPEN_STATUSES),
        or_(*(~_partner_exists(d, ptype, col) for ptype, col in roles.values())),
    )


def action_needed(
    conn: Connection, org_id: Viewer | str, *, before: str | None, limit: int
) -> list[RowMapping]:
    """Rejected, inspected or held declarations, and open lists missing a partner document."""
    d = t.declarations
    stmt = select(d).where(
        visible_to(org_id),
        or_(d.c.status.in_(ACTION_STATUSES), *(_missing_partner(lt) for lt in PARTNERS)),
    )
    if before:
        stmt = stmt.where(d.c.id < before)
    return list(conn.execute(stmt.order_by(d.c.id.desc()).limit(limit)).mappings())


def missing_partners(conn: Connection, declaration: Any) -> list[str]:
    """The partner roles (order, payment, waybill) not (or no longer) in the gateway."""
    roles = PARTNERS.get(declaration["type"])
    if not roles:
        return []
    missing = []
    for role, (ptype, column) in roles.items():
        value = declaration[column]
        found = (
            value
            and conn.execute(
                select(t.declarations.c.id).where(
                    t.declarations.c.type == ptype,
                    t.declarations.c[column] == value,
                    t.declarations.c.status.not_in(("rejected", "cancelled")),
                )
            ).first()
        )
        if not found:
            missing.append(role)
    return missing


def authority_infos(conn: Connection, ids: Sequence[str]) -> dict[str, list[RowMapping]]:
    """Each declaration's authority rows, for a page of declarations at once."""
    out: dict[str, list[RowMapping]] = {i: [] for i in ids}
    if ids:
        rows = conn.execute(
            select(t.authority_statuses)
            .where(t.authority_statuses.c.declaration_id.in_(list(ids)))
            .order_by(t.authority_statuses.c.authority)
        ).mappings()
        for r in rows:
            out[r["declaration_id"]].append(r)
    return out


def activity(
    conn: Connection, org_id: Viewer | str, since: datetime, until: datetime
) -> list[RowMapping]:
    """Type, status and milestones of visible declarations created in [since, until)."""
    d = t.declarations.c
    stmt = select(d.type, d.status, d.created_at, d.released_at).where(
        visible_to(org_id), d.created_at >= since, d.created_at < until
    )
    return list(conn.execute(stmt).mappings())


def by_number(conn: Connection, org_id: Viewer | str, number: str) -> list[RowMapping]:
    """Visible declarations carrying ``number`` in one of their indexed number columns."""
    d = t.declarations.c
    stmt = select(t.declarations).where(
        visible_to(org_id), or_(*(d[c] == number for c in NUMBER_COLUMNS))
    )
    return list(conn.execute(stmt.order_by(d.id)).mappings())


def carrying_element(
    conn: Connection, org_id: Viewer | str, element: str, number: str, limit: int = 200
) -> list[RowMapping]:
    """Visible declarations whose document carries ``<element>number</element>`` (from the
    numbers kept beside each document at acceptance)."""
    d, n = t.declarations, t.declaration_numbers
    stmt = (
        select(d)
        .join(n, n.c.declaration_id == d.c.id)
        .where(visible_to(org_id), n.c.kind == element, n.c.number == number)
        .order_by(d.c.id)
        .limit(limit)
    )
    return list(conn.execute(stmt).mappings())


def related(
    conn: Connection, org_id: Viewer | str, order_nos: Sequence[str], logistics_nos: Sequence[str]
) -> list[RowMapping]:
    """Every visible declaration of the same parcel: by orderNo or logisticsNo."""
    d = t.declarations.c
    clauses = []
    if order_nos:
        clauses.append(d.order_no.in_(list(order_nos)))
    if logistics_nos:
        clauses.append(d.logistics_no.in_(list(logistics_nos)))
    if not clauses:
        return []
    stmt = select(t.declarations).where(visible_to(org_id), or_(*clauses))
    return list(conn.execute(stmt.order_by(d.id)).mappings())


def find_visible(conn: Connection, org_id: Viewer | str, declaration_id: str) -> RowMapping | None:
    """One declaration if the organisation may see it, else None (foreign = nonexistent)."""
    stmt = select(t.declarations).where(t.declarations.c.id == declaration_id, visible_to(org_id))
    return conn.execute(stmt).mappings().first()
