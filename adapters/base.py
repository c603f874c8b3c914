"""The one interface every authority adapter offers (customs, inspection, port)."""

from __future__ import annotations

from typing import Protocol


class AuthorityClient(Protocol):
    """Sends one signed message to one authority; the authority dedupes on ``dispatch_id``."""

    name: str

    def send(self, dispatch_id: str, message_type: str, signed_xml: bytes, sender_id: str) -> None:
        """Deliver the exact signed bytes for ``sender_id`` (a DXP id), or raise
        Retryable/TerminalAuthorityError."""
        ...
