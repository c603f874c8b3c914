"""Fresh copies of the shipped example messages (new guids and numbers each time)."""

from __future__ import annotations

import copy
import random
import re
import uuid

from lxml import etree

from gateway.domain.rules import id_check_digit
from gateway.settings import PROJECT_ROOT
from schemas.registry import CEB_NS

EXAMPLE_CEB621 = PROJECT_ROOT / "examples" / "CEB621.xml"
_Q = f"{{{CEB_NS}}}"


def _guid() -> str:
    return str(uuid.uuid4()).upper()


EXAMPLE_BUYER_ID = "11010519491231002X"  # the buyer and payer of the shipped examples


def synthetic_id_number(rng: random.Random | None = None) -> str:
    """A made-up resident ID number with a valid birth date and check digit: each fresh
    example gets its own buyer, so examples never use up one person's annual quota."""
    rng = rng or random.Random()
    birth = f"{rng.randint(1950, 2004)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    first17 = f"110105{birth}{rng.randint(0, 999):03d}"
    return first17 + id_check_digit(first17)


def synthetic_phone(rng: random.Random | None = None) -> str:
    """A made-up 11-digit mainland mobile number (1, then 3-9, then nine digits): each fresh
    example's buyer gets its own, so a leak scan can tell the buyers' phones apart."""
    rng = rng or random.Random()
    return f"1{rng.randint(3, 9)}{rng.randint(0, 999_999_999):09d}"


def fresh_ceb621(documents: int = 1, buyer_id: str | None = None) -> bytes:
    """The example CEB621 with ``documents`` inventory lists, each with new unique keys and
    a new synthetic buyer and phone (or ``buyer_id`` for all of them, who keeps the
    example's phone: one buyer, one phone)."""
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
            ("buyerIdNumber", buyer_id or synthetic_id_number()),
            ("buyerTelephone", None if buyer_id else synthetic_phone()),
        ):
            el = head.find(f"{_Q}{name}")
            if el is not None and value is not None:
                el.text = value
        root.insert(i, doc)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


PARCEL_TYPES = ("CEB311", "CEB411", "CEB511", "CEB621")
_GUID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")
# The numbers that tie order, payment, waybill and inventory list together in the examples.
_SHARED = ("ORD202611230001", "LN202611230001", "PAY2026112309301234567", "COP202611230001")


def fresh_parcel(buyer_id: str | None = None) -> dict[str, bytes]:
    """One parcel's four documents (order, payment, waybill, inventory list) whose shared
    numbers match each other (三单对碰) and are new, with new guids everywhere, bought by
    a new synthetic buyer (or ``buyer_id``)."""
    tag = uuid.uuid4().hex[:10].upper()
    replacements = {old: f"{old[:3]}{tag}{i}" for i, old in enumerate(_SHARED)}
    replacements[EXAMPLE_BUYER_ID] = buyer_id or synthetic_id_number()
    out = {}
    for message_type in PARCEL_TYPES:
        text = (PROJECT_ROOT / "examples" / f"{message_type}.xml").read_text(encoding="utf-8")
        for old, new in replacements.items():
            text = text.replace(old, new)
        out[message_type] = _GUID.sub(lambda _m: _guid(), text).encode("utf-8")
    return out
