"""Statuses: the authorities' receipt codes and the gateway's own declaration status.

Receipt codes are the public CEB ``returnStatus`` values (DESIGN.md §4). Each is mapped to a
``Phase`` with a rank, so receipts that arrive late or twice can never move an authority
backwards, and terminal phases absorb everything after them.
"""

from __future__ import annotations

from enum import IntEnum, StrEnum


class Authority(StrEnum):
    """The authorities a declaration may be routed to."""

    CUSTOMS = "customs"
    INSPECTION = "inspection"
    PORT = "port"


class DeclarationStatus(StrEnum):
    """The one status per declaration that the API and dashboard show."""

    ACCEPTED = "accepted"
    SUBMITTED = "submitted"
    UNDER_REVIEW = "under_review"
    INSPECTION = "inspection"
    RELEASED = "released"
    CLOSED = "closed"
    REJECTED = "rejected"
    HELD = "held"
    CANCELLED = "cancelled"
    RETURNED = "returned"


TERMINAL_STATUSES = frozenset(
    {
        DeclarationStatus.CLOSED,
        DeclarationStatus.REJECTED,
        DeclarationStatus.CANCELLED,
        DeclarationStatus.RETURNED,
    }
)


class Phase(IntEnum):
    """Where one authority stands with a declaration; the value orders progress."""

    NONE = 0
    DECLARING = 10  # 1 saved, 2 declaring, 3 sent to customs
    STORED = 20  # 120 logic check passed
    REVIEW = 30  # 300 manual review, 399 concluded
    INSPECTION = 40  # 500
    HELD = 50  # 501-599 detained
    RELEASED = 60  # 800
    CLOSED = 70  # 899
    REJECTED = 80  # 100, 4 send failed, negative codes: processing errors
    RETURNED = 90  # 700


TERMINAL_PHASES = frozenset({Phase.CLOSED, Phase.REJECTED, Phase.RETURNED})

RETURN_STATUS_TEXT = {
    "1": "saved",
    "2": "declaring (e-port accepted)",
    "3": "sent to customs",
    "4": "send failed",
    "100": "rejected",
    "120": "stored, logic check passed",
    "300": "manual review",
    "399": "concluded",
    "500": "inspection",
    "700": "returned",
    "800": "released",
    "899": "closed",
}


def phase_of(return_status: str) -> Phase:
    """Map a receipt ``returnStatus`` code to its phase; unknown codes raise ValueError."""
    code = return_status.strip()
    try:
        n = int(code)
    except ValueError:
        raise ValueError(f"returnStatus {code!r} is not a number") from None
    if n < 0 or n in (4, 100):
        return Phase.REJECTED
    if n in (1, 2, 3):
        return Phase.DECLARING
    if n == 120:
        return Phase.STORED
    if n in (300, 399):
        return Phase.REVIEW
    if n == 500:
        return Phase.INSPECTION
    if 501 <= n <= 599:
        return Phase.HELD
    if n == 700:
        return Phase.RETURNED
    if n == 800:
        return Phase.RELEASED
    if n == 899:
        return Phase.CLOSED
    raise ValueError(f"returnStatus {code!r} is not a known receipt code")


def describe_code(return_status: str) -> str:
    """A short English name for a receipt code, for timelines."""
    code = return_status.strip()
    if code.startswith("-"):
        return "processing error"
    if code in RETURN_STATUS_TEXT:
        return RETURN_STATUS_TEXT[code]
    if code.isdigit() and 501 <= int(code) <= 599:
        return "detained"
    return "unknown"
