"""Inspect once: one joint inspection per consignment, whoever selects it first.

Pure decisions the receipt use case applies; the database's unique index on the consignment
backs the rule, so even two concurrent selections open one inspection.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from gateway.domain.statuses import Authority, Phase


class InspectionStep(StrEnum):
    """What a receipt does to the joint inspection."""

    NONE = "none"
    OPEN = "open"  # the first authority selects the consignment: open it
    JOIN = "join"  # another authority selects it: it joins the open inspection
    RESULT = "result"  # an inspecting authority reports its result (800 / 501-599)


@dataclass(frozen=True)
class JointInspection:
    """The open inspection of a consignment: who asked, and who has reported."""

    requested_by: frozenset[Authority]
    results: Mapping[Authority, str]

    @property
    def complete(self) -> bool:
        """Every authority that asked for the inspection has reported its result."""
        return self.requested_by <= set(self.results)


def may_touch_inspection(before: Phase, after: Phase) -> bool:
    """Whether a move can open, join or complete an inspection (else inspection_step is
    NONE whatever the record says: the caller need not read it)."""
    return (before == Phase.INSPECTION) != (after == Phase.INSPECTION)


def inspection_step(
    existing: JointInspection | None, authority: Authority, before: Phase, after: Phase
) -> InspectionStep:
    """Decide what an authority's move from ``before`` to ``after`` means for inspection."""
    if after == Phase.INSPECTION and before != Phase.INSPECTION:
        if existing is None:
            return InspectionStep.OPEN
        if authority not in existing.requested_by:
            return InspectionStep.JOIN
        return InspectionStep.NONE  # re-inspection after a hold: the same inspection
    if before == Phase.INSPECTION and after != Phase.INSPECTION and existing is not None:
        return InspectionStep.RESULT
    return InspectionStep.NONE
