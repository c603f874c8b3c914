"""The export path's milestones on the lists they concern.

An export inventory list (CEB603) is released per list; the port or site operator then
declares the goods' arrival at the port (CEB507, 运抵) and the logistics company their
departure (CEB509, 离境), each naming the lists' waybill numbers. When customs accepts such a
declaration, every named list gets the milestone in its timeline, and departure closes a
released list: the goods have left the country.
"""

from __future__ import annotations

from typing import Any

from gateway.domain.statuses import DeclarationStatus
from gateway.persistence import repository as repo
from gateway.xml.parsing import parse_xml
from schemas.registry import CEB_NS

_Q = f"{{{CEB_NS}}}"
MILESTONES = {
    "CEB507": ("ArrivalList", "export_arrival", "arrived at the exit port (运抵)"),
    "CEB509": ("DepartureList", "departed", "left the country (离境)"),
}


def record_milestone(conn: Any, declaration: Any, at: Any) -> int:
    """On customs' acceptance of a CEB507/CEB509, mark every export list it names."""
    milestone = MILESTONES.get(declaration["type"])
    if milestone is None:
        return 0
    list_name, kind, text = milestone
    msg = repo.get_message(conn, declaration["message_id"])
    if msg is None:
        return 0
    documents = parse_xml(msg["raw_xml"]).findall(f"{_Q}{declaration_document(declaration)}")
    doc = documents[declaration["position"] - 1] if documents else None
    numbers = (
        [(el.text or "").strip() for el in doc.iterfind(f"{_Q}{list_name}/{_Q}logisticsNo")]
        if doc is not None
        else []
    )
    marked = 0
    for number in filter(None, numbers):
        for target in repo.open_declarations_by_logistics_no(conn, number, ["CEB603"]):
            closing = kind == "departed" and target["status"] == DeclarationStatus.RELEASED
            status = DeclarationStatus.CLOSED.value if closing else target["status"]
            if closing:
                repo.update_declaration(conn, target["id"], status=status)
            repo.insert_events(
                conn,
                [
                    dict(
                        declaration_id=target["id"],
                        at=at,
                        kind=kind,
                        source="customs",
                        status=status,
                        info=f"{text}: {declaration['type']} {declaration['id']} accepted",
                    )
                ],
            )
            marked += 1
    return marked


def declaration_document(declaration: Any) -> str:
    """The document element of a milestone declaration (Arrival / Departure)."""
    return {"CEB507": "Arrival", "CEB509": "Departure"}[declaration["type"]]
