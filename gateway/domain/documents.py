"""What the gateway keeps of one document in a message: its keys and the codes in it."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class DocumentKeys:
    """The identifying fields of one document (one future declaration)."""

    position: int
    guid: str
    order_no: str | None = None
    logistics_no: str | None = None
    cop_no: str | None = None
    codes: tuple[str, ...] = field(default_factory=tuple)


def duplicate_guids(documents: list[DocumentKeys]) -> list[tuple[DocumentKeys, DocumentKeys]]:
    """Pairs (first, later) of documents in one message that share a guid."""
    seen: dict[str, DocumentKeys] = {}
    out: list[tuple[DocumentKeys, DocumentKeys]] = []
    for doc in documents:
        first = seen.setdefault(doc.guid, doc)
        if first is not doc:
            out.append((first, doc))
    return out
