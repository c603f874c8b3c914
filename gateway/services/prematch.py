"""Pre-match before sending (三单对碰): when an inventory list's order, payment and waybill
are already in the gateway, compare them now and show a mismatch to the broker at once,
field by field, instead of waiting for customs' rejection. It works both ways: a list meets
the partners declared before it, and a partner meets the list declared before it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from sqlalchemy import and_, bindparam, or_, select

from gateway.domain.errors import BusinessRuleViolation, Violation
from gateway.domain.matching import (
    INVENTORY_DIRECTION,
    PARTNER_TYPES,
    Document,
    Partners,
    check,
)
from gateway.persistence import repository as repo
from gateway.persistence import tables as t
from gateway.services.runtime import Runtime
from gateway.xml.documents import DocumentElements, document_elements
from gateway.xml.parsing import parse_xml
from gateway.xml.validation import detect
from schemas.registry import MessageSpec

# direction -> role -> partner message type
PARTNER_OF = {
    d: {role: t for t, (dd, role) in PARTNER_TYPES.items() if dd == d} for d in ("I", "E")
}
INVENTORY_OF = {d: t for t, d in INVENTORY_DIRECTION.items()}


def _document(conn: Any, row: Any, limits: Any) -> Document:
    msg = repo.get_message(conn, row["message_id"])
    root = parse_xml(msg["raw_xml"], limits)
    doc = document_elements(root, detect(root))[row["position"] - 1]
    return Document(row["type"], doc.view.head, doc.view.lines)


def _open(conn: Any, message_type: str, **where: str) -> Any:
    stmt = select(t.declarations).where(
        t.declarations.c.type == message_type,
        t.declarations.c.status.not_in(("rejected", "cancelled")),
    )
    for column, value in where.items():
        stmt = stmt.where(t.declarations.c[column] == value)
    return conn.execute(stmt.order_by(t.declarations.c.created_at.desc())).mappings().first()


NOTHING = "\x00"  # a key that matches no row: a partner the list does not name
_D = t.declarations
# The three partners of a list in one lookup: each branch is served by its own index.
_PARTNERS = (
    select(_D)
    .where(
        _D.c.status.not_in(("rejected", "cancelled")),
        or_(
            and_(_D.c.type == bindparam("order_type"), _D.c.business_key == bindparam("order")),
            and_(_D.c.type == bindparam("payment_type"), _D.c.order_no == bindparam("payment")),
            and_(_D.c.type == bindparam("waybill_type"), _D.c.logistics_no == bindparam("waybill")),
        ),
    )
    .order_by(_D.c.created_at.desc())
)


def _partners(conn: Any, rt: Runtime, direction: str, head: dict[str, str]) -> Partners:
    types = PARTNER_OF[direction]
    order_no, ebp = head.get("orderNo", ""), head.get("ebpCode", "")
    keys = {
        "order": f"{types['order']}:{ebp}|{order_no}",
        "payment": order_no,
        "waybill": head.get("logisticsNo", ""),
    }
    params = {role: key or NOTHING for role, key in keys.items()}
    params.update({f"{role}_type": types[role] for role in keys})
    newest: dict[str, Any] = {}
    for row in conn.execute(_PARTNERS, params).mappings():
        role = next(r for r in keys if types[r] == row["type"])
        newest.setdefault(role, row)  # newest first
    found = {
        role: _document(conn, newest[role], rt.limits) if role in newest else None for role in keys
    }
    return Partners(**found)


def _violations(spec: MessageSpec, doc: DocumentElements, problems: list[Any]) -> list[Violation]:
    base = f"/{spec.root}/{spec.document}[{doc.position}]"
    head = f"{base}/{spec.head}" if spec.head else base
    return [
        Violation(
            f"{head}/{p.field}" if p.field else base,
            f"rule.match.{p.partner}",
            f"{p.en} (三单对碰)",
            message_zh=p.zh,
        )
        for p in problems
    ]


def prematch(rt: Runtime, spec: MessageSpec, elements: list[DocumentElements]) -> None:
    """Refuse a list (or a partner) that disagrees with what the gateway already holds."""
    direction = INVENTORY_DIRECTION.get(spec.type) or PARTNER_TYPES.get(spec.type, ("",))[0]
    if not direction:
        return
    violations: list[Violation] = []
    with rt.engine.connect() as conn:
        for doc in elements:
            view = doc.view
            if spec.type in INVENTORY_DIRECTION:
                partners = _partners(conn, rt, direction, view.head)
                problems = check(Document(spec.type, view.head, view.lines), partners)
            else:
                problems = _against_inventory(conn, rt, direction, spec.type, view)
            violations += _violations(spec, doc, problems)
    if violations:
        raise BusinessRuleViolation(
            f"{len(violations)} disagreement(s) with the order, payment or waybill already "
            "declared (三单对碰); customs would reject this.",
            violations=violations,
        )


def _against_inventory(
    conn: Any, rt: Runtime, direction: str, message_type: str, view: Any
) -> list[Any]:
    """A partner declared after its list: check the list with this partner in place."""
    role = PARTNER_TYPES[message_type][1]
    head = view.head
    where = (
        {"logistics_no": head.get("logisticsNo", "")}
        if role == "waybill"
        else {"order_no": head.get("orderNo", "")}
    )
    row = _open(conn, INVENTORY_OF[direction], **where) if all(where.values()) else None
    if row is None:
        return []
    inventory = _document(conn, row, rt.limits)
    partners = _partners(conn, rt, direction, inventory.head)
    partners = Partners(**{**partners.__dict__, role: Document(message_type, head, view.lines)})
    # The partner is the newcomer here: name the document, not one of the list's fields.
    return [replace(p, field="") for p in check(inventory, partners) if p.partner == role]
