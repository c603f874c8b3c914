"""Personal data in CEB documents: which fields hold it, how each is masked, who sees it whole.

The buyer's (or payer's) ID number, phone numbers, names and addresses are personal data.
They are stored encrypted and shown whole only to the declarant (the organisation that
submitted the message) and its broker (the organisation registered under the document's
``agentCode``); everyone else who may see a declaration reads them masked.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from enum import StrEnum

from gateway.domain.rules import mask_id


class PersonalKind(StrEnum):
    ID_NUMBER = "id_number"
    PHONE = "phone"
    NAME = "name"
    ADDRESS = "address"


# Field (element) name -> what kind of personal data it holds, across the CEB documents.
PERSONAL_FIELDS: dict[str, PersonalKind] = {
    "buyerIdNumber": PersonalKind.ID_NUMBER,
    "payerIdNumber": PersonalKind.ID_NUMBER,
    "buyerTelephone": PersonalKind.PHONE,
    "consigneeTelephone": PersonalKind.PHONE,
    "telephone": PersonalKind.PHONE,
    "buyerName": PersonalKind.NAME,
    "payerName": PersonalKind.NAME,
    "consignee": PersonalKind.NAME,
    "consigneeAddress": PersonalKind.ADDRESS,
}


def mask_phone(value: str) -> str:
    """Keep the first three and the last four digits (138****5678), as receipts show them."""
    v = value.strip()
    return v[:3] + "*" * (len(v) - 7) + v[-4:] if len(v) > 8 else "*" * len(v)


def mask_name(value: str) -> str:
    """Keep the first character (the family name, for Chinese names)."""
    v = value.strip()
    return v[:1] + "*" * max(1, len(v) - 1) if v else v


def mask_address(value: str) -> str:
    """Keep the first three characters (the province, usually) and hide the rest."""
    v = value.strip()
    return v[:3] + "****" if len(v) > 3 else "*" * len(v)


_MASKERS = {
    PersonalKind.ID_NUMBER: mask_id,
    PersonalKind.PHONE: mask_phone,
    PersonalKind.NAME: mask_name,
    PersonalKind.ADDRESS: mask_address,
}


def mask_field(field: str, value: str) -> str:
    """The value as a viewer without the right to personal data sees it (others unchanged)."""
    kind = PERSONAL_FIELDS.get(field)
    return _MASKERS[kind](value) if kind is not None and value else value


def sees_personal_data(
    viewer_org_id: str,
    viewer_codes: Iterable[str],
    declarant_org_id: str,
    agent_codes: Iterable[str],
) -> bool:
    """The one rule: the declarant, or the broker named by the document's agentCode."""
    if viewer_org_id == declarant_org_id:
        return True
    codes = set(viewer_codes)
    return any(code and code in codes for code in agent_codes)


# Free text (log lines, exception messages, authorities' returnInfo): an 18-character ID card
# number or an 11-digit mainland mobile number standing on its own, not inside a longer run
# of letters and digits (so preNo, invtNo and our ids are never touched).
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])(\d{6})(\d{8})(\d{3}[\dXx])(?![0-9A-Za-z])")
_MOBILE = re.compile(r"(?<![0-9A-Za-z])(1[3-9]\d)(\d{4})(\d{4})(?![0-9A-Za-z])")


def redact_text(text: str) -> str:
    """Mask ID card and mobile numbers anywhere in a piece of free text."""
    text = _ID_CARD.sub(lambda m: m.group(1) + "********" + m.group(3), text)
    return _MOBILE.sub(lambda m: m.group(1) + "****" + m.group(3), text)
