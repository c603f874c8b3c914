"""The clearance state machine: one gateway status derived from every authority's phase.

Pure Python, no I/O. ``apply_receipt`` decides whether a receipt moves an authority forward
(never backwards, never out of a terminal phase); ``derive_status`` computes the overall
status from the routed authorities; ``check_transition`` refuses changes that the
transition table does not allow, so a bug or a hostile receipt is recorded, not applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from gateway.domain.statuses import (
    TERMINAL_PHASES,
    Authority,
    DeclarationStatus,
    Phase,
    phase_of,
)

S = DeclarationStatus

_BEFORE_RELEASE = frozenset({S.INSPECTION, S.HELD, S.RELEASED, S.CLOSED, S.REJECTED, S.RETURNED})

# Which overall status may follow which. Receipts can arrive out of order (899 before 800, a
# 700 straight after 120), so every pre-release status may jump to any later one; after
# release only close, return or cancel; terminal statuses have no way out.
TRANSITIONS: dict[DeclarationStatus, frozenset[DeclarationStatus]] = {
    S.ACCEPTED: _BEFORE_RELEASE | {S.SUBMITTED, S.UNDER_REVIEW, S.CANCELLED},
    S.SUBMITTED: _BEFORE_RELEASE | {S.UNDER_REVIEW, S.CANCELLED},
    S.UNDER_REVIEW: _BEFORE_RELEASE | {S.CANCELLED},
    # Back to under review when every authority has cleared but arrival is still awaited.
    S.INSPECTION: (_BEFORE_RELEASE - {S.INSPECTION}) | {S.UNDER_REVIEW},
    S.HELD: (_BEFORE_RELEASE - {S.HELD}) | {S.UNDER_REVIEW},
    S.RELEASED: frozenset({S.CLOSED, S.RETURNED, S.CANCELLED}),
    S.CLOSED: frozenset(),
    S.REJECTED: frozenset(),
    S.CANCELLED: frozenset(),
    S.RETURNED: frozenset(),
}


class IllegalTransition(Exception):
    """A status change the transition table does not allow."""

    def __init__(self, current: DeclarationStatus, proposed: DeclarationStatus) -> None:
        super().__init__(f"{current} -> {proposed} is not an allowed transition")
        self.current = current
        self.proposed = proposed


def check_transition(current: DeclarationStatus, proposed: DeclarationStatus) -> None:
    """Raise IllegalTransition unless ``current -> proposed`` is in the table (or a no-op)."""
    if current != proposed and proposed not in TRANSITIONS[current]:
        raise IllegalTransition(current, proposed)


@dataclass(frozen=True)
class ReceiptDecision:
    """What one receipt does to one authority's phase."""

    applies: bool
    phase: Phase
    reason: str


def apply_receipt(current: Phase, return_status: str) -> ReceiptDecision:
    """Decide whether a receipt moves an authority forward; late or stale ones do not."""
    new = phase_of(return_status)
    if current in TERMINAL_PHASES:
        return ReceiptDecision(False, current, f"authority already final ({current.name})")
    if current >= Phase.RELEASED and new == Phase.REJECTED:
        return ReceiptDecision(False, current, "a rejection after release is recorded, not applied")
    if new <= current and not (current == Phase.HELD and new == Phase.INSPECTION):
        return ReceiptDecision(False, current, f"stale: {new.name} does not advance {current.name}")
    return ReceiptDecision(True, new, "advances")


def derive_status(
    phases: Mapping[Authority, Phase],
    *,
    all_sent: bool,
    current: DeclarationStatus,
    awaiting_arrival: bool = False,
) -> DeclarationStatus:
    """The overall status implied by the routed authorities' phases.

    Rejection by any authority wins, then return, hold, inspection; released only when
    every routed authority has released and, for an advance declaration (提前申报、运抵验放),
    the port has reported arrival; cancelled is set by the cancel use case, not here.
    """
    if current in (S.CANCELLED,):
        return current
    values = list(phases.values())
    if not values:
        return current
    if any(p == Phase.REJECTED for p in values):
        return S.REJECTED
    if any(p == Phase.RETURNED for p in values):
        return S.RETURNED
    if any(p == Phase.HELD for p in values):
        return S.HELD
    if any(p == Phase.INSPECTION for p in values):
        return S.INSPECTION
    if all(p == Phase.CLOSED for p in values) and not awaiting_arrival:
        return S.CLOSED
    if all(p >= Phase.RELEASED for p in values):
        if awaiting_arrival:
            return current if current == S.UNDER_REVIEW else S.UNDER_REVIEW
        return S.RELEASED
    if any(p >= Phase.STORED for p in values):
        return S.UNDER_REVIEW
    if all_sent:
        return S.SUBMITTED if current in (S.ACCEPTED, S.SUBMITTED) else current
    return current
