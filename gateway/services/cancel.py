"""Cancel an accepted inventory list (CEB623 import, CEB605 export) in one call.

The gateway builds the cancellation from the declaration it already holds, then declares it
like any message (validated, signed, routed to customs). When customs accepts the
cancellation, the original is cancelled (see ``end_referenced``); until then it keeps its
status. A change before acceptance is done with appType 2/3 instead; that is what this
answers when customs has not yet accepted the list.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from lxml import etree

from gateway.domain.access import Viewer
from gateway.domain.audit import Actor
from gateway.domain.documents import TERMINATING
from gateway.domain.errors import BusinessRuleViolation, DuplicateDeclaration, NotFound, Violation
from gateway.persistence import repository as repo
from gateway.persistence.visibility import find_visible
from gateway.services import audit
from gateway.services.declare import Accepted, declare
from gateway.services.runtime import Runtime
from gateway.services.tax_quota import restore
from gateway.xml.parsing import parse_xml
from schemas.registry import CEB_NS

_Q = f"{{{CEB_NS}}}"
CHINA = ZoneInfo("Asia/Shanghai")
CANCEL_OF = {
    "CEB621": ("CEB623", "Inventory", "InventoryHead"),
    "CEB603": ("CEB605", "Inventory", "InventoryHead"),
}
# Field order of InvtCancel (our schemas/ceb/CEB623.xsd); export CEB605 uses its own subset.
IMPORT_FIELDS = (
    "guid",
    "appType",
    "appTime",
    "appStatus",
    "customsCode",
    "orderNo",
    "ebpCode",
    "ebpName",
    "ebcCode",
    "ebcName",
    "logisticsNo",
    "logisticsCode",
    "logisticsName",
    "copNo",
    "preNo",
    "invtNo",
    "buyerIdType",
    "buyerIdNumber",
    "buyerName",
    "buyerTelephone",
    "agentCode",
    "agentName",
    "reason",
)


def _head(raw_xml: bytes, position: int, document: str, head: str) -> tuple[dict[str, str], Any]:
    root = parse_xml(raw_xml)
    doc = root.findall(f"{_Q}{document}")[position - 1]
    el = doc.find(f"{_Q}{head}")
    fields = {
        etree.QName(c).localname: (c.text or "").strip() for c in el if isinstance(c.tag, str)
    }
    return fields, root.find(f"{_Q}BaseTransfer")


def build_cancel(declaration: Any, raw_xml: bytes, reason: str) -> bytes:
    """A CEB623 for an accepted CEB621 (fields copied from it, numbers from customs)."""
    cancel_type, document, head_name = CANCEL_OF[declaration["type"]]
    head, transfer = _head(raw_xml, declaration["position"], document, head_name)
    values = {
        **head,
        "guid": str(uuid.uuid4()).upper(),
        "appType": "1",
        "appStatus": "2",
        "appTime": datetime.now(CHINA).strftime("%Y%m%d%H%M%S"),
        "preNo": declaration["pre_no"] or "",
        "invtNo": declaration["invt_no"] or "",
        "reason": reason,
    }
    root = etree.Element(
        f"{_Q}{cancel_type}Message",
        nsmap={"ceb": CEB_NS},
        guid=str(uuid.uuid4()).upper(),
        version="1.0",
    )
    body = etree.SubElement(root, f"{_Q}InvtCancel")
    for name in IMPORT_FIELDS:
        if values.get(name):
            etree.SubElement(body, f"{_Q}{name}").text = values[name]
    if transfer is not None:
        root.append(transfer)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def cancel(
    rt: Runtime,
    org_id: str,
    declaration_id: str,
    reason: str,
    viewer: Viewer | None = None,
    *,
    actor: Actor | None = None,
) -> Accepted:
    """Declare (as ``org_id``) the cancellation of an accepted inventory list the viewer sees
    (by default: one ``org_id`` submitted); 404 when not visible, 409 when it cannot be."""
    with rt.engine.connect() as conn:
        decl = find_visible(conn, viewer or Viewer(org_id), declaration_id)
        if decl is None:
            raise NotFound(f"No declaration {declaration_id} is visible to you.")
        msg = repo.get_message(conn, decl["message_id"])
    if decl["type"] not in CANCEL_OF:
        raise BusinessRuleViolation(
            f"{decl['type']} cannot be cancelled; only inventory lists (CEB621, CEB603) can.",
            violations=[Violation("/", "cancel.not_an_inventory", "not an inventory list")],
        )
    if decl["status"] in ("cancelled", "rejected", "returned", "closed"):
        raise DuplicateDeclaration(
            f"{declaration_id} is {decl['status']}; there is nothing to cancel.",
            violations=[Violation("/", "cancel.final", f"the declaration is {decl['status']}")],
        )
    if not decl["invt_no"]:
        raise BusinessRuleViolation(
            "Customs has not accepted this inventory list yet (no invtNo): send the same list "
            "with appType 3 (delete) or 2 (change) instead of a cancellation.",
            violations=[
                Violation(
                    "/", "cancel.not_accepted_yet", "cancel applies after customs acceptance (120)"
                )
            ],
        )
    if not reason.strip() or len(reason) > 1000:
        raise BusinessRuleViolation(
            "Give a reason (1 to 1000 characters).",
            violations=[Violation("/reason", "cancel.reason", "a reason is required")],
        )
    assert msg is not None
    body = build_cancel(decl, msg["raw_xml"], reason.strip())
    actor = actor or Actor("org", org_id)
    accepted = declare(
        rt, org_id, body, "application/xml", actor=actor, action="cancellation.submitted"
    )
    with rt.engine.begin() as conn:
        repo.insert_events(
            conn,
            [
                dict(
                    declaration_id=declaration_id,
                    at=repo.now(),
                    kind="cancel_requested",
                    source="gateway",
                    status=decl["status"],
                    info=f"cancellation {accepted.declarations[0].id} declared: {reason.strip()}",
                )
            ],
        )
        audit.record(
            conn,
            actor,
            "declaration.cancel_requested",
            [declaration_id, accepted.declarations[0].id],
            {"type": decl["type"], "reason_chars": len(reason.strip())},
        )
    return accepted


def end_referenced(conn: Any, declaration: Any, at: Any) -> str | None:
    """When customs accepts a cancellation or return, end the list it names (by invtNo).
    Returns the id of the declaration it ended, if any."""
    target = TERMINATING.get(declaration["type"])
    if target is None:
        return None
    target_type, final = target
    msg = repo.get_message(conn, declaration["message_id"])
    if msg is None:
        return None
    head = parse_xml(msg["raw_xml"]).findall(f".//{_Q}invtNo")
    invt_no = (head[declaration["position"] - 1].text or "").strip() if head else ""
    original = repo.find_by_invt_no(conn, target_type, invt_no) if invt_no else None
    if original is None or original["status"] in ("cancelled", "returned", "rejected"):
        return None
    repo.update_declaration(conn, original["id"], status=final)
    restored = restore(conn, original, at)  # the buyer's annual quota comes back
    info = f"{declaration['type']} {declaration['id']} accepted by customs: the list is {final}"
    if restored:
        info += f"; {restored} CNY back in the buyer's annual quota"
    repo.insert_events(
        conn,
        [
            dict(
                declaration_id=original["id"],
                at=at,
                kind=final,
                source="customs",
                status=final,
                info=info,
            )
        ],
    )
    return str(original["id"])
