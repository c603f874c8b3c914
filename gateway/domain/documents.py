"""What the gateway keeps of one document in a message: its keys and the codes in it."""

from __future__ import annotations

from dataclasses import dataclass, field

from gateway.domain.rules import DocumentView


@dataclass(frozen=True)
class DocumentKeys:
    """The identifying fields of one document (one future declaration)."""

    position: int
    guid: str
    order_no: str | None = None
    logistics_no: str | None = None
    cop_no: str | None = None
    codes: tuple[str, ...] = field(default_factory=tuple)
    app_type: str = "1"
    business_key: str | None = None


# The fields that identify a business document across messages (DESIGN.md §3: orderNo per
# platform, logisticsNo per logistics company, an inventory by its declarant's own number).
BUSINESS_KEY_FIELDS: dict[str, tuple[str, ...]] = {
    "CEB311": ("ebpCode", "orderNo"),
    "CEB303": ("ebpCode", "orderNo"),
    "CEB411": ("payCode", "payTransactionId"),
    "CEB511": ("logisticsCode", "logisticsNo"),
    "CEB505": ("logisticsCode", "logisticsNo"),
    "CEB621": ("agentCode", "copNo"),
    "CEB603": ("agentCode", "copNo"),
    # One open cancellation per inventory list.
    "CEB623": ("agentCode", "invtNo"),
    "CEB605": ("agentCode", "invtNo"),
}

# Documents that end another declaration when customs accepts them, and what they make it:
# message type -> (the type it refers to by invtNo, the status it ends in).
TERMINATING: dict[str, tuple[str, str]] = {
    "CEB623": ("CEB621", "cancelled"),
    "CEB605": ("CEB603", "cancelled"),
    "CEB625": ("CEB621", "returned"),
}


def business_key(message_type: str, head: dict[str, str]) -> str | None:
    """``type:value|value`` for types with a business key, when every part is present."""
    names = BUSINESS_KEY_FIELDS.get(message_type)
    if not names:
        return None
    values = [head.get(n, "").strip() for n in names]
    if not all(values):
        return None
    return f"{message_type}:" + "|".join(values)


def duplicate_guids(documents: list[DocumentKeys]) -> list[tuple[DocumentKeys, DocumentKeys]]:
    """Pairs (first, later) of documents in one message that share a guid."""
    seen: dict[str, DocumentKeys] = {}
    out: list[tuple[DocumentKeys, DocumentKeys]] = []
    for doc in documents:
        first = seen.setdefault(doc.guid, doc)
        if first is not doc:
            out.append((first, doc))
    return out


# Numbers a trace must find that only the document itself carries (not a column of ours).
TRACED_ELEMENTS = ("payTransactionId", "barCode")


def traced_numbers(view: DocumentView) -> list[tuple[str, str]]:
    """Each distinct (element, number) of TRACED_ELEMENTS in a document's head and lines."""
    found: list[tuple[str, str]] = []
    for fields in (view.head, *view.lines):
        for element in TRACED_ELEMENTS:
            number = (fields.get(element) or "").strip()[:100]
            if number and (element, number) not in found:
                found.append((element, number))
    return found


def duplicate_business_keys(
    documents: list[DocumentKeys],
) -> list[tuple[DocumentKeys, DocumentKeys]]:
    """Pairs (first, later) of documents in one message with the same business key: the
    same order, waybill or list twice in one message can be declared only once."""
    seen: dict[str, DocumentKeys] = {}
    out: list[tuple[DocumentKeys, DocumentKeys]] = []
    for doc in documents:
        if doc.business_key:
            first = seen.setdefault(doc.business_key, doc)
            if first is not doc:
                out.append((first, doc))
    return out
