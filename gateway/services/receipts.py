"""Record receipts from an authority: verify, deduplicate, advance the state machine.

A receipt is trusted only after its signature verifies against the sending authority's
certificates; only the verified element is read. The same receipt twice changes nothing,
and a receipt that would move an authority backwards is kept in the timeline, not applied.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from lxml import etree

from adapters.dxp import read_envelope
from gateway.domain.audit import Actor
from gateway.domain.clearance import apply_receipt
from gateway.domain.errors import ReceiptRejected, Violation
from gateway.domain.statuses import Authority, Phase, describe_code
from gateway.persistence import repository as repo
from gateway.services.cancel import end_referenced
from gateway.services.export_path import record_milestone
from gateway.services.inbound import Pending, Step, apply_message, settled_before
from gateway.services.inspections import record_inspection
from gateway.services.runtime import Runtime
from gateway.services.status import refresh_status
from gateway.services.tax_quota import record_tax_bill
from gateway.xml.parsing import parse_xml
from gateway.xml.validation import detect, schema_violations
from schemas.registry import CEB_NS, MessageSpec, all_specs
from signing.errors import SignatureError
from signing.xmldsig import verify_enveloped

_Q = f"{{{CEB_NS}}}"
FORMAT_ERROR = "CEB900"
TAX_BILL = "CEB816"
SUMMARY_RESULT = "CEB792"


@dataclass
class ReceiptOutcome:
    """How many return entries were applied, were duplicates, or changed nothing."""

    authority: str
    message_type: str
    applied: int = 0
    duplicates: int = 0
    stale: int = 0
    unmatched: list[str] = field(default_factory=list)

    def settled(self) -> bool:
        """An unmatched entry may match later (when polled again): not settled."""
        return not self.unmatched

    def absorb(self, other: ReceiptOutcome) -> None:
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.stale += other.stale
        self.unmatched += other.unmatched


def _reject(code: str, message: str, path: str = "/") -> ReceiptRejected:
    return ReceiptRejected(message, violations=[Violation(path, code, message)])


def _declared_type(receipt_type: str) -> str | None:
    for spec in all_specs():
        if spec.reply == receipt_type:
            return spec.type
    return None


def record_receipts(rt: Runtime, body: bytes) -> ReceiptOutcome:
    """Verify and apply one receipt message delivered in a DXP envelope."""
    envelope = read_envelope(parse_xml(body, rt.limits))
    authority = rt.senders.get(envelope.sender_id)
    if authority is None:
        raise _reject(
            "receipt.unknown_sender",
            f"SenderId {envelope.sender_id} is not a configured authority",
            "/DxpMsg/TransInfo/SenderId",
        )
    root = parse_xml(envelope.data, rt.limits)
    raw = etree.tostring(root)
    if settled_before(rt, raw):  # its type was detected when it was first applied
        spec = detect(root)
        entries = sum(1 for _ in root.iterfind(f"{_Q}{spec.document}"))
        return ReceiptOutcome(authority, spec.type, duplicates=entries)
    try:
        verified = verify_enveloped(
            root, rt.trust[authority], rt.receipt_policy, engine=rt.verify_engine
        )
    except SignatureError as exc:
        raise _reject(exc.code, f"receipt signature refused: {exc}") from None
    doc = verified.root
    spec = detect(doc)
    if spec.kind != "receipt":
        raise _reject("receipt.not_a_receipt", f"{spec.type} is not a receipt")
    violations = schema_violations(doc, spec)
    if violations:
        raise ReceiptRejected(f"The {spec.type} receipt is invalid.", violations=violations)
    entries = doc.iterfind(f"{_Q}{spec.document}")
    steps: list[Step]
    if spec.type in RESULT_HANDLERS:
        handle, fields = RESULT_HANDLERS[spec.type]
        steps = [partial(_apply_result, authority, spec, e, handle, fields) for e in entries]
    else:
        steps = [partial(_apply_entry, rt, authority, spec, _leaf_fields(e)) for e in entries]
    return apply_message(
        rt, partial(ReceiptOutcome, authority, spec.type), (authority, spec.type, raw), steps
    )


def _leaf_fields(el: etree._Element) -> dict[str, str]:
    return {
        etree.QName(c).localname: (c.text or "").strip()
        for c in el
        if isinstance(c.tag, str) and len(c) == 0
    }


def _apply_result(
    authority: str,
    spec: MessageSpec,
    entry: etree._Element,
    handle: Any,
    fields: tuple[str, str, str],
    conn: Any,
    digest: str,
    outcome: ReceiptOutcome,
    pending: Pending,
) -> None:
    """An authority's document about a declaration that is not a status receipt (a tax bill,
    a summary result): handled once, however often it comes. ``fields`` names the head's
    (status, time, key) fields for the receipt record and the unmatched list."""
    head_el = entry.find(f"{_Q}{spec.head}")
    if head_el is None:
        return
    head = _leaf_fields(head_el)
    status_field, time_field, key_field = fields
    fingerprint = _fingerprint(authority, spec, head)
    if repo.receipt_seen(conn, fingerprint):
        outcome.duplicates += 1
        return
    declaration_id = handle(conn, authority, head, entry, repo.now())
    if declaration_id is None:
        outcome.unmatched.append(head.get(key_field, ""))
        return
    repo.insert_receipt(
        conn,
        fingerprint=fingerprint,
        authority=authority,
        message_type=spec.type,
        declaration_id=declaration_id,
        return_status=(head.get(status_field) or spec.type)[:10],
        return_time=head.get(time_field),
        applied=1,
        message_digest=digest,
    )
    pending.audit(
        Actor("authority", authority),
        "receipt.applied",
        [declaration_id],
        {"type": spec.type, "code": (head.get(status_field) or "")[:10]},
    )
    outcome.applied += 1


def _tax_bill(
    conn: Any, authority: str, head: dict[str, str], entry: etree._Element, at: Any
) -> str | None:
    """Keep customs' tax bill (CEB816) on the list it taxes."""
    del authority
    lines = [_leaf_fields(x) for x in entry.iterfind(f"{_Q}TaxListRd")]
    return record_tax_bill(conn, head, lines, at)


def _summary_result(
    conn: Any, authority: str, head: dict[str, str], entry: etree._Element, at: Any
) -> str | None:
    """Customs' result of a summary application (CEB792): the entry number, and the
    application is concluded."""
    decl = repo.find_declaration_by_doc_guid(conn, "CEB701", head.get("guid", ""), for_update=True)
    if decl is None:
        return None
    status = decl["status"]
    if status not in ("closed", "rejected", "cancelled"):
        status = "closed"
        repo.update_declaration(conn, decl["id"], status=status)
    lists = len(entry.findall(f"{_Q}SummaryResultList"))
    repo.insert_events(
        conn,
        [
            dict(
                declaration_id=decl["id"],
                at=at,
                kind="summary_result",
                source=authority,
                status=status,
                code=head.get("decState"),
                info=f"summary result: sumNo {head.get('sumNo', '')}, entryId "
                f"{head.get('entryId', '')}, {lists} goods line(s)",
                data={"sumNo": head.get("sumNo"), "entryId": head.get("entryId")},
            )
        ],
    )
    return str(decl["id"])


RESULT_HANDLERS = {
    TAX_BILL: (_tax_bill, ("status", "returnTime", "invtNo")),
    SUMMARY_RESULT: (_summary_result, ("decState", "opDate", "guid")),
}


def _targets(conn: Any, spec: MessageSpec, fields: dict[str, str]) -> list[Any]:
    if spec.type == FORMAT_ERROR:
        dispatch = repo.get_dispatch(conn, fields.get("oriCopMsgId", ""))
        if dispatch is None:
            return []
        return repo.declarations_of_message(conn, dispatch["message_id"])
    declared = _declared_type(spec.type)
    if declared is None:
        return []
    found = repo.find_declaration_by_doc_guid(
        conn, declared, fields.get("guid", ""), for_update=True
    )
    return [found] if found is not None else []


def _fingerprint(authority: str, spec: MessageSpec, fields: dict[str, str]) -> str:
    parts = [authority, spec.type] + [f"{k}={v}" for k, v in sorted(fields.items())]
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def _apply_entry(
    rt: Runtime,
    authority: str,
    spec: MessageSpec,
    fields: dict[str, str],
    conn: Any,
    digest: str,
    outcome: ReceiptOutcome,
    pending: Pending,
) -> None:
    """One return entry, inside its message's transaction; that transaction's first
    statement was a write, so it holds the write lock and what it reads is current."""
    fingerprint = _fingerprint(authority, spec, fields)
    code = fields.get("returnStatus", "")
    at = repo.now()
    if repo.receipt_seen(conn, fingerprint):
        outcome.duplicates += 1
        return
    targets = _targets(conn, spec, fields)
    if not targets:
        outcome.unmatched.append(fields.get("guid") or fields.get("oriCopMsgId", ""))
        return
    repo.insert_receipt(
        conn,
        fingerprint=fingerprint,
        authority=authority,
        message_type=spec.type,
        declaration_id=targets[0]["id"],
        return_status=code,
        return_time=fields.get("returnTime"),
        applied=1,
        message_digest=digest,
    )
    for decl in targets:
        _apply_to_declaration(conn, rt, authority, spec, fields, decl, at, outcome, pending.ring)
    pending.audit(
        Actor("authority", authority),
        "receipt.applied",
        [d["id"] for d in targets],
        {"type": spec.type, "code": code},
    )


def _decide(
    spec: MessageSpec, current: Phase, code: str, info: str
) -> tuple[Phase, bool, str, str]:
    """(new phase, applies, reason, info) for one return entry."""
    if spec.type == FORMAT_ERROR:
        return (
            Phase.REJECTED,
            current != Phase.REJECTED,
            "format error",
            f"format error (CEB900): {info}",
        )
    try:
        decision = apply_receipt(current, code)
    except ValueError as exc:
        return current, False, str(exc), info
    return decision.phase, decision.applies, decision.reason, info


def _apply_to_declaration(
    conn: Any,
    rt: Runtime,
    authority: str,
    spec: MessageSpec,
    fields: dict[str, str],
    decl: Any,
    at: Any,
    outcome: ReceiptOutcome,
    ring: list[str],
) -> None:
    code = fields.get("returnStatus", "")
    rows = {r["authority"]: r for r in repo.authority_rows(conn, decl["id"])}
    current = Phase(rows[authority]["phase"]) if authority in rows else Phase.NONE
    phase, applies, reason, info = _decide(spec, current, code, fields.get("returnInfo", ""))
    if authority not in rows:
        applies, reason = False, f"{authority} is not routed for this declaration"
    numbers = {k: fields[k] for k in ("preNo", "invtNo") if fields.get(k)}
    updates = {"pre_no": numbers["preNo"]} if "preNo" in numbers and not decl["pre_no"] else {}
    if "invtNo" in numbers and not decl["invt_no"]:
        updates["invt_no"] = numbers["invtNo"]
    if updates:
        repo.update_declaration(conn, decl["id"], **updates)
        decl = {**decl, **updates}
    status = decl["status"]
    label = f"receipt {code} ({describe_code(code)})"
    extra = ", ".join(f"{k} {v}" for k, v in numbers.items())
    text = f"{label}: {info}" + (f"; {extra}" if extra else "")
    if not applies:
        text += f" [not applied: {reason}]"
        outcome.stale += 1
    else:
        repo.update_authority_status(
            conn, decl["id"], authority, phase=int(phase), code=code, info=info[:2000]
        )
        rows[authority] = {**rows[authority], "phase": int(phase)}
        record_inspection(conn, decl["id"], Authority(authority), current, phase, code, info, at)
        outcome.applied += 1
    # The receipt's event first, then what it caused (inspection, release).
    repo.insert_events(
        conn,
        [
            dict(
                declaration_id=decl["id"],
                at=at,
                kind="receipt",
                source=authority,
                status=status,
                code=code,
                info=text[:2000],
                data={"message_type": spec.type, "returnTime": fields.get("returnTime"), **numbers},
            )
        ],
    )
    if applies:
        accepted_now = current < Phase.STORED <= phase  # the first acceptance only
        if accepted_now and phase not in (Phase.REJECTED, Phase.RETURNED):
            end_referenced(conn, decl, at)  # an accepted cancellation or return
            record_milestone(conn, decl, at)  # an accepted export arrival or departure
        # The row and phases are current: read in this transaction, under its write lock
        # (CEB900's targets are not locked on PostgreSQL: refresh_status reads them again).
        phases = None
        if spec.type != FORMAT_ERROR:
            phases = {Authority(a): Phase(r["phase"]) for a, r in rows.items()}
        new_status = refresh_status(
            conn, rt, decl, source=authority, at=at, ring=ring, current_phases=phases
        )
        if new_status != status:
            repo.insert_events(
                conn,
                [
                    dict(
                        declaration_id=decl["id"],
                        at=at,
                        kind="status",
                        source=authority,
                        status=new_status,
                        info=f"{status} -> {new_status}",
                    )
                ],
            )
