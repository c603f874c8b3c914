"""Everything a broker needs on one declaration's page, gathered in one read: the status,
each authority, the timeline, the joint inspection, tax, the matched order / payment /
waybill (三单对碰), and every rejection explained next to the field at fault.

Personal data is masked here, before anything reaches a template.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from gateway.domain.access import Viewer
from gateway.domain.errors import NotFound
from gateway.domain.explain import Explanation, explain
from gateway.domain.masking import mask_text, masked
from gateway.domain.matching import INVENTORY_DIRECTION, Document, Mismatch, Partners, check
from gateway.domain.statuses import TERMINAL_STATUSES, Phase, describe_code
from gateway.persistence import lookups
from gateway.persistence import repository as repo
from gateway.services.runtime import Runtime
from gateway.xml.documents import document_elements
from gateway.xml.parsing import parse_xml
from gateway.xml.validation import detect

PARTNER_FIELDS = {
    "order": ("orderNo", "ebpCode", "goodsValue", "acturalPaid", "buyerName", "buyerIdNumber"),
    "payment": ("payTransactionId", "payCode", "orderNo", "amountPaid", "payerName"),
    "waybill": ("logisticsNo", "logisticsCode", "billNo", "orderNo", "weight", "consignee"),
}


@dataclass
class Rejection:
    """One authority's refusal, explained."""

    authority: str
    code: str
    explanation: Explanation

    @property
    def held(self) -> bool:
        """A detention (5xx) rather than a refusal of the document."""
        return self.code.isdigit() and 501 <= int(self.code) <= 599


@dataclass
class Partner:
    """One of an inventory list's three documents, as far as the caller may see it."""

    role: str
    type: str
    present: bool  # declared to the gateway (by anyone)
    declaration: Any = None  # the row, when visible to the caller
    fields: dict[str, str] = field(default_factory=dict)


@dataclass
class Dossier:
    """A declaration and all that belongs to it, masked, ready to render."""

    declaration: Any
    authorities: list[dict[str, Any]]
    events: list[Any]
    inspection: Any
    head: dict[str, str]
    lines: list[dict[str, str]]
    partners: list[Partner]
    mismatches: list[Mismatch]
    rejections: list[Rejection]

    @property
    def final(self) -> bool:
        """Nothing more will happen by itself: the page may stop polling."""
        return self.declaration["status"] in {s.value for s in TERMINAL_STATUSES}

    def notes(self, name: str) -> list[tuple[str, Any]]:
        """The rejection reasons (authority, reason) about one field."""
        return [
            (r.authority, reason)
            for r in self.rejections
            for reason in r.explanation.reasons
            if reason.field == name
        ]

    def document_notes(self) -> list[tuple[str, Any]]:
        """Reasons that name no field of this document."""
        known = set(self.head) | {k for line in self.lines for k in line}
        return [
            (r.authority, reason)
            for r in self.rejections
            if not r.held
            for reason in r.explanation.reasons
            if reason.field not in known
        ]


def find_visible(conn: Any, org_id: Viewer | str, declaration_id: str) -> Any:
    """The declaration, or NotFound when it does not exist or is not the caller's."""
    row = lookups.find_visible(conn, org_id, declaration_id)
    if row is None:
        raise NotFound(f"No declaration {declaration_id} is visible to you.")
    return row


def stored_document(conn: Any, row: Any, rt: Runtime) -> Document:
    """A declaration's own document (head and lines) from its stored message."""
    msg = repo.get_message(conn, row["message_id"])
    root = parse_xml(msg["raw_xml"], rt.limits)
    doc = document_elements(root, detect(root))[row["position"] - 1]
    return Document(row["type"], doc.view.head, doc.view.lines)


def _partners(conn: Any, rt: Runtime, org_id: Viewer | str, decl: Any) -> list[Partner]:
    roles = lookups.PARTNERS.get(decl["type"])
    if not roles:
        return []
    missing = set(lookups.missing_partners(conn, decl))
    visible = lookups.related(
        conn,
        org_id,
        [decl["order_no"]] if decl["order_no"] else [],
        [decl["logistics_no"]] if decl["logistics_no"] else [],
    )
    out = []
    for role, (ptype, column) in roles.items():
        rows = [
            r
            for r in visible
            if r["type"] == ptype
            and r[column] == decl[column]
            and r["status"] not in ("rejected", "cancelled")
        ]
        partner = Partner(role, ptype, role not in missing)
        if rows:
            partner.declaration = rows[-1]
            head = stored_document(conn, rows[-1], rt).head
            partner.fields = masked({k: head.get(k, "") for k in PARTNER_FIELDS[role]})
        out.append(partner)
    return out


def _mismatches(conn: Any, rt: Runtime, doc: Document, partners: list[Partner]) -> list[Mismatch]:
    if doc.type not in INVENTORY_DIRECTION:
        return []
    found = {
        p.role: stored_document(conn, p.declaration, rt)
        for p in partners
        if p.declaration is not None
    }
    return check(doc, Partners(**found))


def dossier(rt: Runtime, org_id: Viewer | str, declaration_id: str) -> Dossier:
    """Gather one visible declaration's page (NotFound for a foreign or unknown id)."""
    with rt.engine.connect() as conn:
        decl = find_visible(conn, org_id, declaration_id)
        doc = stored_document(conn, decl, rt)
        fields = set(doc.head) | {k for line in doc.lines for k in line}
        authorities, rejections = [], []
        for a in repo.authority_rows(conn, declaration_id):
            phase = Phase(a["phase"])
            code = a["code"] or ""
            authorities.append(
                {
                    "authority": a["authority"],
                    "code": code,
                    "text": describe_code(code) if code else "waiting",
                    "phase": phase.name.lower(),
                    "info": mask_text(a["info"] or ""),
                    "updated_at": repo.as_utc(a["updated_at"]),
                }
            )
            if phase == Phase.REJECTED or phase == Phase.HELD:
                info = a["info"] or ""
                if info.startswith("format error"):
                    code = "format"
                rejections.append(Rejection(a["authority"], code, explain(code, info, fields)))
        partners = _partners(conn, rt, org_id, decl)
        return Dossier(
            declaration=decl,
            authorities=authorities,
            events=[
                {**e, "info": mask_text(e["info"] or "")}
                for e in repo.events_of(conn, declaration_id)
            ],
            inspection=repo.joint_inspection_of(conn, declaration_id),
            head=masked(doc.head),
            lines=[masked(line) for line in doc.lines],
            partners=partners,
            mismatches=_mismatches(conn, rt, doc, partners),
            rejections=rejections,
        )
