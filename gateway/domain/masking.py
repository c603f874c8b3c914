"""Personal data (buyer's id number, phone, name, address) masked for lists and pages.

Only the declarant's own systems and the authorities need these whole; a dashboard shows
enough to recognise a parcel (the region prefix and last digits, a surname) and no more.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from gateway.domain.rules import mask_id

ID_FIELDS = frozenset({"buyerIdNumber", "payerIdNumber"})
PHONE_FIELDS = frozenset({"buyerTelephone", "consigneeTelephone", "telephone"})
NAME_FIELDS = frozenset({"buyerName", "payerName", "consignee", "buyerRegNo"})
ADDRESS_FIELDS = frozenset({"consigneeAddress"})
PERSONAL_FIELDS = ID_FIELDS | PHONE_FIELDS | NAME_FIELDS | ADDRESS_FIELDS


def mask_phone(value: str) -> str:
    """Keep the first three and last two digits of a phone number."""
    v = value.strip()
    return v[:3] + "*" * (len(v) - 5) + v[-2:] if len(v) > 6 else "*" * len(v)


def mask_name(value: str) -> str:
    """Keep the first character (a Chinese surname, an initial)."""
    v = value.strip()
    return v[:1] + "*" * max(1, min(len(v) - 1, 6)) if v else ""


def mask_address(value: str) -> str:
    """Keep the first six characters (province and city), hide the street and number."""
    v = value.strip()
    return v[:6] + "…" + "*" * 4 if len(v) > 6 else "*" * len(v)


def mask_value(field: str, value: str) -> str:
    """``value`` masked if ``field`` holds personal data, else unchanged."""
    if not value:
        return value
    if field in ID_FIELDS:
        return mask_id(value)
    if field in PHONE_FIELDS:
        return mask_phone(value)
    if field in NAME_FIELDS:
        return mask_name(value)
    if field in ADDRESS_FIELDS:
        return mask_address(value)
    return value


def masked(fields: Mapping[str, str]) -> dict[str, str]:
    """A copy of a document head (or line) with every personal field masked."""
    return {k: mask_value(k, v) for k, v in fields.items()}


_ID_NUMBER = re.compile(r"(?<![0-9A-Za-z])\d{17}[\dXx](?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<!\d)1\d{10}(?!\d)")
_AFTER_FIELD = re.compile(r"\b(" + "|".join(sorted(NAME_FIELDS | ADDRESS_FIELDS)) + r")\s+(\S+)")


def mask_text(text: str) -> str:
    """Free text (an authority's reason) with id numbers, mobiles and the values that
    follow a personal field's name masked."""
    text = _ID_NUMBER.sub(lambda m: mask_id(m.group(0)), text)
    text = _MOBILE.sub(lambda m: mask_phone(m.group(0)), text)
    return _AFTER_FIELD.sub(lambda m: f"{m.group(1)} {mask_value(m.group(1), m.group(2))}", text)
