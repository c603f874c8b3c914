"""Read the documents of a validated CEB message: guids, business numbers, party codes."""

from __future__ import annotations

from lxml import etree

from gateway.domain.documents import DocumentKeys
from schemas.registry import CEB_NS, MessageSpec

_Q = f"{{{CEB_NS}}}"
# Head fields that name a party; an organisation sees declarations that carry its codes.
PARTY_FIELDS = ("ebpCode", "ebcCode", "agentCode", "logisticsCode", "payCode")


def _text(parent: etree._Element, name: str) -> str | None:
    value = parent.findtext(f"{_Q}{name}")
    value = value.strip() if value else None
    return value or None


def message_guid(root: etree._Element) -> str:
    """The message's own guid attribute."""
    return (root.get("guid") or "").strip()


def extract_documents(root: etree._Element, spec: MessageSpec) -> list[DocumentKeys]:
    """One DocumentKeys per document element, in message order (positions from 1)."""
    cop_code = root.findtext(f"{_Q}BaseTransfer/{_Q}copCode")
    docs: list[DocumentKeys] = []
    for position, doc in enumerate(root.iterfind(f"{_Q}{spec.document}"), start=1):
        head = doc.find(f"{_Q}{spec.head}") if spec.head else doc
        if head is None:
            continue
        codes = {c for c in (_text(head, f) for f in PARTY_FIELDS) if c}
        if cop_code and cop_code.strip():
            codes.add(cop_code.strip())
        docs.append(
            DocumentKeys(
                position=position,
                guid=_text(head, "guid") or "",
                order_no=_text(head, "orderNo"),
                logistics_no=_text(head, "logisticsNo"),
                cop_no=_text(head, "copNo"),
                codes=tuple(sorted(codes)),
            )
        )
    return docs
