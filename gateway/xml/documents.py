"""Read the documents of a validated CEB message: guids, business numbers, party codes."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from gateway.domain.documents import DocumentKeys, business_key
from gateway.domain.errors import Violation
from gateway.domain.rules import DocumentView, check_document
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
        fields = _fields(head)
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
                app_type=fields.get("appType", "1") or "1",
                business_key=business_key(spec.type, fields),
            )
        )
    return docs


@dataclass(frozen=True)
class DocumentElements:
    """A document's elements (for paths and line numbers) and its plain view (for rules)."""

    position: int
    element: etree._Element
    head: etree._Element
    lines: list[etree._Element]
    line_name: str | None
    view: DocumentView


def _fields(el: etree._Element) -> dict[str, str]:
    return {
        etree.QName(c).localname: (c.text or "").strip()
        for c in el
        if isinstance(c.tag, str) and len(c) == 0
    }


def document_elements(root: etree._Element, spec: MessageSpec) -> list[DocumentElements]:
    """Each document of the message with its head and list lines."""
    out: list[DocumentElements] = []
    for position, doc in enumerate(root.iterfind(f"{_Q}{spec.document}"), start=1):
        head = doc.find(f"{_Q}{spec.head}") if spec.head else doc
        if head is None:
            head = doc
        lines = [
            c
            for c in doc
            if isinstance(c.tag, str)
            and c is not head
            and etree.QName(c).localname.endswith(("List", "ListRd"))
        ]
        line_name = etree.QName(lines[0]).localname if lines else None
        view = DocumentView(spec.type, _fields(head), [_fields(x) for x in lines])
        out.append(DocumentElements(position, doc, head, lines, line_name, view))
    return out


def rule_violations(spec: MessageSpec, elements: list[DocumentElements]) -> list[Violation]:
    """Business-rule violations of every document, with the path and line of the field."""
    out: list[Violation] = []
    for doc in elements:
        base = f"/{spec.root}/{spec.document}[{doc.position}]"
        for rv in check_document(doc.view):
            if rv.line is not None and doc.line_name:
                element = doc.lines[rv.line - 1]
                parent = f"{base}/{doc.line_name}[{rv.line}]"
            else:
                element = doc.head
                parent = base if doc.head is doc.element else f"{base}/{spec.head}"
            target = element.find(f"{_Q}{rv.field}") if rv.field else None
            anchor = target if target is not None else element
            path = f"{parent}/{rv.field}" if rv.field else base
            out.append(
                Violation(
                    path,
                    f"rule.{rv.code}",
                    rv.message,
                    line=anchor.sourceline,
                    value=rv.value,
                    message_zh=rv.message_zh,
                )
            )
    return out
