"""What of a stored message a viewer may read: whole for the declarant and its broker,
personal data masked for every other party that can see the declaration."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree

from gateway.domain.privacy import sees_personal_data
from gateway.xml.masking import agent_codes, masked_copy
from gateway.xml.parsing import DEFAULT_LIMITS, ParseLimits, parse_xml
from schemas.registry import get_spec


@dataclass(frozen=True)
class MessageView:
    """The message as this viewer may read it; ``whole`` when nothing was masked."""

    xml: bytes
    whole: bool
    limits: ParseLimits = DEFAULT_LIMITS

    def root(self) -> etree._Element:
        """The (masked) tree, for the JSON rendering."""
        return parse_xml(self.xml, self.limits)


def view_message(
    msg: Mapping[str, Any],
    viewer_org_id: str,
    viewer_codes: Iterable[str],
    limits: ParseLimits = DEFAULT_LIMITS,
) -> MessageView:
    """The declared message for this viewer: the exact stored bytes when every document is
    theirs to read whole (declarant, or the broker of each), else a masked copy."""
    raw: bytes = msg["raw_xml"]
    if sees_personal_data(viewer_org_id, (), msg["org_id"], ()):
        return MessageView(raw, True, limits)
    codes = tuple(viewer_codes)
    root = parse_xml(raw, limits)
    spec = get_spec(msg["type"])
    agents = agent_codes(root, spec)
    count = len(root.findall(f"{{{spec.namespace}}}{spec.document}")) if spec.document else 1
    whole = {
        p
        for p in range(1, count + 1)
        if sees_personal_data(viewer_org_id, codes, msg["org_id"], [agents.get(p, "")])
    }
    if count and len(whole) == count:
        return MessageView(raw, True, limits)
    masked = masked_copy(root, spec, whole)
    return MessageView(
        etree.tostring(masked, xml_declaration=True, encoding="UTF-8"), False, limits
    )


def may_read_signed(
    msg: Mapping[str, Any], viewer_org_id: str, viewer_codes: Iterable[str]
) -> bool:
    """The signed bytes cannot be masked (the signature covers them): only a viewer who
    reads every document of the message whole may have them."""
    return view_message(msg, viewer_org_id, viewer_codes).whole
