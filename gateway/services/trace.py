"""Traceability: from any number of a parcel to its whole chain — order, payment, waybill,
inventory list, every receipt, inspection, tax, release and the port's gate-out.

Numbers kept in columns (orderNo, logisticsNo, invtNo, preNo, copNo) are looked up directly;
payTransactionId and barCode only live inside the stored documents, so candidate messages
are found by their bytes and every hit is confirmed by parsing the document it belongs to
(always in step with what was declared, with no second copy to drift). Only declarations
visible to the caller appear; a foreign number gives an empty chain.
"""

from __future__ import annotations

from typing import Any

from gateway.domain.access import Viewer
from gateway.domain.documents import TRACED_ELEMENTS
from gateway.domain.masking import mask_text
from gateway.persistence import lookups
from gateway.persistence import repository as repo
from gateway.services.runtime import Runtime

MAX_DECLARATIONS = 100
ROLES = {
    "CEB311": "order",
    "CEB303": "order",
    "CEB411": "payment",
    "CEB403": "payment",
    "CEB511": "waybill",
    "CEB505": "waybill",
    "CEB621": "inventory",
    "CEB603": "inventory",
    "CEB623": "cancel",
    "CEB605": "cancel",
    "CEB625": "return",
}
CHAIN_ORDER = ("order", "payment", "waybill", "inventory", "cancel", "return", "other")


def _matches(conn: Any, org_id: Viewer | str, number: str) -> dict[str, tuple[Any, str]]:
    found = {r["id"]: (r, "number") for r in lookups.by_number(conn, org_id, number)}
    for element in TRACED_ELEMENTS:
        for row in lookups.carrying_element(conn, org_id, element, number):
            found.setdefault(row["id"], (row, element))
    return found


def _expand(conn: Any, org_id: Viewer | str, rows: dict[str, Any]) -> dict[str, Any]:
    """Two hops over orderNo and logisticsNo reach every document of the parcel."""
    for _ in range(2):
        orders = sorted({r["order_no"] for r in rows.values() if r["order_no"]})
        waybills = sorted({r["logistics_no"] for r in rows.values() if r["logistics_no"]})
        for r in lookups.related(conn, org_id, orders, waybills):
            if len(rows) >= MAX_DECLARATIONS:
                break
            rows.setdefault(r["id"], r)
    return rows


def _iso(value: Any) -> str | None:
    value = repo.as_utc(value)
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _declaration(row: Any, matched_by: str | None) -> dict[str, Any]:
    return {
        "id": row["id"],
        "type": row["type"],
        "role": ROLES.get(row["type"], "other"),
        "status": row["status"],
        "matched_by": matched_by,
        "order_no": row["order_no"],
        "logistics_no": row["logistics_no"],
        "cop_no": row["cop_no"],
        "pre_no": row["pre_no"],
        "invt_no": row["invt_no"],
        "created_at": _iso(row["created_at"]),
        "released_at": _iso(row["released_at"]),
        "gate_out_at": _iso(row["gate_out_at"]),
        "tax": row["tax"],
    }


def trace(rt: Runtime, org_id: Viewer | str, number: str) -> dict[str, Any]:
    """The chain of every visible declaration that ``number`` leads to, and its events."""
    number = number.strip()
    with rt.engine.connect() as conn:
        matches = _matches(conn, org_id, number) if number else {}
        rows = _expand(conn, org_id, {i: row for i, (row, _) in matches.items()})
        events = []
        inspections = []
        for row in rows.values():
            for e in repo.events_of(conn, row["id"]):
                events.append(
                    {
                        "at": _iso(e["at"]),
                        "declaration_id": row["id"],
                        "type": row["type"],
                        "source": e["source"],
                        "kind": e["kind"],
                        "code": e["code"],
                        "info": mask_text(e["info"] or ""),
                    }
                )
            joint = repo.joint_inspection_of(conn, row["id"])
            if joint is not None:
                inspections.append(
                    {
                        "declaration_id": row["id"],
                        "opened_at": _iso(joint["opened_at"]),
                        "requested_by": joint["requested_by"],
                        "results": joint["results"],
                        "closed_at": _iso(joint["closed_at"]),
                    }
                )
    declarations = [
        _declaration(r, matches[i][1] if i in matches else None) for i, r in rows.items()
    ]
    declarations.sort(key=lambda d: (CHAIN_ORDER.index(d["role"]), d["created_at"] or ""))
    chain: dict[str, list[str]] = {}
    for d in declarations:
        chain.setdefault(d["role"], []).append(d["id"])
    events.sort(key=lambda e: (e["at"] or "", e["declaration_id"]))
    return {
        "q": number,
        "found": bool(declarations),
        "chain": chain,
        "declarations": declarations,
        "inspections": inspections,
        "events": events,
    }
