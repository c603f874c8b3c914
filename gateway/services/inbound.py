"""Apply the entries of one inbound message (receipts, port events) in one transaction.

An authority packs up to 100 entries into one signed message. Applying them together costs
one commit and one stored copy of the message instead of a hundred. If a concurrent twin of
the same message committed first (a unique fingerprint refuses one of ours), the whole
transaction is rolled back and the entries are applied one per transaction, as before, so
each twin entry is counted a duplicate and every other entry still applies.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy.exc import IntegrityError

from gateway.persistence import repository as repo
from gateway.services.runtime import Runtime


class Outcome(Protocol):
    duplicates: int

    def absorb(self, other: Any) -> None: ...


OutcomeT = TypeVar("OutcomeT", bound=Outcome)
# One entry's work: (connection, message digest, outcome to count into, dispatch ids to ring).
Step = Callable[[Any, str, Any, list[str]], None]


def apply_message(
    rt: Runtime,
    new_outcome: Callable[[], OutcomeT],
    source: tuple[str, str, bytes],
    steps: Sequence[Step],
) -> OutcomeT:
    """Run ``steps`` in one transaction that also keeps the message ``source`` =
    (authority, message type, signed bytes); ring the doorbell for what they queued."""
    outcome, ring = new_outcome(), []
    try:
        with rt.engine.begin() as conn:
            digest = repo.keep_inbound(conn, *source)
            for step in steps:
                step(conn, digest, outcome, ring)
    except IntegrityError:
        return _one_by_one(rt, new_outcome, source, steps)
    rt.ring(ring)
    return outcome


def _one_by_one(
    rt: Runtime,
    new_outcome: Callable[[], OutcomeT],
    source: tuple[str, str, bytes],
    steps: Sequence[Step],
) -> OutcomeT:
    total = new_outcome()
    for step in steps:
        part, ring = new_outcome(), []
        try:
            with rt.engine.begin() as conn:
                step(conn, repo.keep_inbound(conn, *source), part, ring)
        except IntegrityError:  # this entry's twin committed first
            total.duplicates += 1
            continue
        total.absorb(part)
        rt.ring(ring)
    return total
