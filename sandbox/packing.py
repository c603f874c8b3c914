"""Pack an authority's due messages into fewer: one message carries up to 100 entries.

CEB replies allow 100 return entries per message (``maxOccurs="100"`` in every reply schema
but CEB900's), and so do the port's Arrival and GateOut. A busy authority sends what is due
together in one message, as the real ones do; the gateway then verifies one signature and
applies the entries in one transaction instead of a hundred.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

from lxml import etree

from schemas.registry import CEB_NS, PORT_NS, all_specs

MAX_ENTRIES = 100


@functools.cache
def _entry_tags() -> dict[str, str]:
    """Root tag -> the tag of its repeated entries, for the message types that repeat."""
    tags = {
        f"{{{CEB_NS}}}{s.root}": f"{{{CEB_NS}}}{s.document}"
        for s in all_specs()
        if s.kind == "receipt" and s.document and s.type != "CEB900"
    }
    for kind in ("Arrival", "GateOut"):
        tags[f"{{{PORT_NS}}}{kind}"] = f"{{{PORT_NS}}}Consignment"
    return tags


def pack_key(message: etree._Element) -> tuple[str, ...] | None:
    """Messages with the same key can be packed into one; None: this one travels alone.
    The key is the root tag and every child that is not an entry (the port's portCode)."""
    entry = _entry_tags().get(message.tag)
    if entry is None:
        return None
    header = [f"{c.tag}={c.text or ''}" for c in message if c.tag != entry]
    return (message.tag, *header)


def entries(message: etree._Element) -> int:
    """How many entries ``message`` carries (1 for a message that is never packed)."""
    entry = _entry_tags().get(message.tag)
    return len(message.findall(entry)) if entry else 1


def pack(messages: Sequence[etree._Element]) -> etree._Element:
    """The first message with the entries of the others appended, in order (the others
    are emptied: an element has one parent). All must share one ``pack_key``."""
    base = messages[0]
    if len(messages) == 1:
        return base
    entry = _entry_tags()[base.tag]
    for other in messages[1:]:
        for child in other.findall(entry):
            base.append(child)
    return base
