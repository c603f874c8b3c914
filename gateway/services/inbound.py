"""Apply the entries of one inbound message (receipts, port events) in one transaction.

An authority packs up to 100 entries into one signed message. Applying them together costs
one commit and one stored copy of the message instead of a hundred. A message applied whole
before (pushed, then polled again) is answered as duplicates without opening a transaction;
one with an entry that matched nothing yet (a tax bill before its list's number) is not
settled, and is applied again when it comes again.

If a concurrent twin of the same message committed first (a unique fingerprint refuses one
of ours), the whole transaction is rolled back and the entries are applied one per
transaction, as before, so each twin entry is counted a duplicate and every other entry
still applies.

Locks are taken in one order: the entries lock their declarations, and the audit entries
they asked for are written last (the audit chain's head is one row every writer updates).
A deadlock or lock timeout the database reports anyway is retried a few times.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from sqlalchemy.exc import IntegrityError, OperationalError

from gateway.domain.audit import Actor
from gateway.persistence import repository as repo
from gateway.persistence.database import transient
from gateway.services import audit
from gateway.services.runtime import Runtime

ATTEMPTS = 4


class Outcome(Protocol):
    duplicates: int

    def absorb(self, other: Any) -> None: ...

    def settled(self) -> bool:
        """Nothing in the message waits: applying the same bytes again would change nothing."""
        ...


OutcomeT = TypeVar("OutcomeT", bound=Outcome)


@dataclass
class Pending:
    """What an entry leaves for the end of its transaction: dispatches to ring the doorbell
    for (after the commit) and audit entries (written last, before the commit)."""

    ring: list[str] = field(default_factory=list)
    audits: list[tuple[Actor, str, list[str], dict[str, Any]]] = field(default_factory=list)

    def audit(
        self, actor: Actor, action: str, objects: Iterable[str], details: Mapping[str, Any]
    ) -> None:
        self.audits.append((actor, action, list(objects), dict(details)))

    def merged_audits(self) -> list[tuple[Actor, str, list[str], dict[str, Any]]]:
        """One audit entry per (actor, action) of the message: its objects in order, each
        detail kept as is when every entry agrees, else the sorted distinct values, and the
        number of entries. (A hundred chained entries for one message cost a hundred
        updates of the chain head; the receipts table keeps each entry.)"""
        groups: dict[tuple[Actor, str], list[tuple[list[str], dict[str, Any]]]] = {}
        for actor, action, objects, details in self.audits:
            groups.setdefault((actor, action), []).append((objects, details))
        out = []
        for (actor, action), items in groups.items():
            if len(items) == 1:
                out.append((actor, action, *items[0]))
                continue
            objects = list(dict.fromkeys(o for objs, _ in items for o in objs))
            keys = dict.fromkeys(k for _, d in items for k in d)
            details: dict[str, Any] = {"entries": len(items)}
            for key in keys:
                values = [d.get(key) for _, d in items]
                distinct = sorted({str(v) for v in values})
                details[key] = values[0] if len(distinct) == 1 else distinct
            out.append((actor, action, objects, details))
        return out


# One entry's work: (connection, message digest, outcome to count into, pending).
Step = Callable[[Any, str, Any, Pending], None]


def apply_message(
    rt: Runtime,
    new_outcome: Callable[[], OutcomeT],
    source: tuple[str, str, bytes],
    steps: Sequence[Step],
) -> OutcomeT:
    """Run ``steps`` in one transaction that also keeps the message ``source`` =
    (authority, message type, signed bytes); ring the doorbell for what they queued.
    Callers ask ``settled_before`` first, before they verify the message."""
    for attempt in range(1, ATTEMPTS + 1):
        try:
            return _together(rt, new_outcome, source, steps)
        except IntegrityError:
            return _one_by_one(rt, new_outcome, source, steps)
        except OperationalError as exc:
            if attempt == ATTEMPTS or not transient(exc):
                raise
            time.sleep(random.uniform(0.01, 0.05) * attempt)  # let the other one finish
    raise AssertionError("unreachable")


def settled_before(rt: Runtime, raw: bytes) -> bool:
    """Whether these exact bytes were applied whole before (pushed, then polled): callers
    ask before they check the signature, since the same bytes were verified when first
    applied, and answer every entry as a duplicate."""
    with rt.engine.connect() as conn:
        return repo.inbound_settled(conn, raw)


def _run(
    conn: Any, source: tuple[str, str, bytes], steps: Sequence[Step], outcome: Any, keep: bool
) -> Pending:
    pending = Pending()
    # The first statement writes, so this transaction holds SQLite's write lock from here.
    digest = repo.keep_inbound(conn, *source) if keep else repo.inbound_digest(source[2])
    for step in steps:
        step(conn, digest, outcome, pending)
    if keep and outcome.settled():
        repo.settle_inbound(conn, digest)
    for entry in pending.merged_audits():
        audit.record(conn, *entry)
    return pending


def _together(
    rt: Runtime,
    new_outcome: Callable[[], OutcomeT],
    source: tuple[str, str, bytes],
    steps: Sequence[Step],
    keep: bool = True,
) -> OutcomeT:
    outcome = new_outcome()
    with rt.engine.begin() as conn:
        pending = _run(conn, source, steps, outcome, keep)
    rt.ring(pending.ring)
    return outcome


def _one_by_one(
    rt: Runtime,
    new_outcome: Callable[[], OutcomeT],
    source: tuple[str, str, bytes],
    steps: Sequence[Step],
) -> OutcomeT:
    total = new_outcome()
    for step in steps:
        try:
            part = _together(rt, new_outcome, source, [step], keep=False)
        except IntegrityError:  # this entry's twin committed first
            total.duplicates += 1
            continue
        total.absorb(part)
    # Kept once every entry is in: a kept message is one whose entries all applied (the
    # shortcut above), so a crash half-way leaves it to be applied again when resent.
    with rt.engine.begin() as conn:
        digest = repo.keep_inbound(conn, *source)
        if total.settled():
            repo.settle_inbound(conn, digest)
    return total
