"""Mask the personal data of a CEB message for a viewer who may not see it whole."""

from __future__ import annotations

from collections.abc import Container

from lxml import etree

from gateway.domain.privacy import PERSONAL_FIELDS, mask_field
from schemas.registry import CEB_NS, MessageSpec

_Q = f"{{{CEB_NS}}}"


def agent_codes(root: etree._Element, spec: MessageSpec) -> dict[int, str]:
    """Each document's agentCode (its broker), by position from 1; documents without one
    are left out."""
    out: dict[int, str] = {}
    if not spec.document:
        return out
    for position, doc in enumerate(root.iterfind(f"{_Q}{spec.document}"), start=1):
        code = (doc.findtext(f".//{_Q}agentCode") or "").strip()
        if code:
            out[position] = code
    return out


def _mask_element(element: etree._Element) -> int:
    masked = 0
    for el in element.iter():
        if not isinstance(el.tag, str) or not el.tag.startswith(_Q):
            continue
        name = el.tag[len(_Q) :]
        if name in PERSONAL_FIELDS and el.text and el.text.strip():
            el.text = mask_field(name, el.text)
            masked += 1
    return masked


def masked_copy(
    root: etree._Element, spec: MessageSpec, whole: Container[int] = ()
) -> etree._Element:
    """A copy of the message with personal data masked in every document whose position is
    not in ``whole`` (the ones the viewer may read whole)."""
    copy = etree.fromstring(etree.tostring(root))
    documents = list(copy.iterfind(f"{_Q}{spec.document}")) if spec.document else [copy]
    for position, doc in enumerate(documents, start=1):
        if position not in whole:
            _mask_element(doc)
    return copy
