"""Fresh copies of the shipped example messages (new guids and numbers each time)."""

from __future__ import annotations

import copy
import uuid

from lxml import etree

from gateway.settings import PROJECT_ROOT
from schemas.registry import CEB_NS

EXAMPLE_CEB621 = PROJECT_ROOT / "examples" / "CEB621.xml"
_Q = f"{{{CEB_NS}}}"


def _guid() -> str:
    return str(uuid.uuid4()).upper()


def fresh_ceb621(documents: int = 1) -> bytes:
    """The example CEB621 with ``documents`` inventory lists, each with new unique keys."""
    root = etree.fromstring(EXAMPLE_CEB621.read_bytes())
    template = root.find(f"{_Q}Inventory")
    assert template is not None
    root.remove(template)
    root.set("guid", _guid())
    for i in range(documents):
        doc = copy.deepcopy(template)
        head = doc.find(f"{_Q}InventoryHead")
        assert head is not None
        tag = uuid.uuid4().hex[:10].upper()
        for name, value in (
            ("guid", _guid()),
            ("orderNo", f"ORD{tag}{i:03d}"),
            ("logisticsNo", f"LN{tag}{i:03d}"),
            ("copNo", f"COP{tag}{i:03d}"),
        ):
            el = head.find(f"{_Q}{name}")
            if el is not None:
                el.text = value
        root.insert(i, doc)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
