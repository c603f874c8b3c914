"""Declare many messages at once (bulk uploads) with the answers one by one would give.

Each message is checked, pre-matched and signed as ``declare`` does; what differs is the
database: a run of messages is screened with one lookup per kind of key (idempotency keys,
guids, business keys) and written with one statement per table in one transaction, instead
of a dozen statements and a commit each. Whatever the screen cannot settle takes the single
path, so every refusal reads exactly as a single submission's would:

- a message that shares a guid or business key with an earlier one of the run closes the
  run first (the later one must see the earlier one stored, and be refused as a duplicate);
  the buyers' quota needs no such care: it counts released lists only, never accepted ones;
- a change or deletion (appType 2, 3), and a message whose keys are already in the
  database, are declared one by one by ``declare``;
- a run holds one message type: pre-matching (三单对碰) compares a list with partners of
  other types, which must be stored before it meets them, as they would be one by one.

The transaction failing on a unique index (a twin on another worker won) sends its run
down the single path too, which answers a twin's key as a replay.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError, OperationalError

from gateway.domain.audit import Actor
from gateway.domain.errors import BusinessRuleViolation, GatewayError
from gateway.persistence import repository as repo
from gateway.services.declare import (
    Accepted,
    Checked,
    Stored,
    accepted,
    arrivals,
    check_submission,
    declare,
    logistics_numbers,
    plan_writes,
    replayed,
    sign_message,
    write_accepted,
)
from gateway.services.prematch import prematch
from gateway.services.runtime import Runtime
from gateway.services.tax_quota import check_quota

log = logging.getLogger(__name__)
RUN = 100  # messages per transaction
ACTION = "declaration.submitted"


@dataclass(frozen=True)
class Submission:
    body: bytes
    content_type: str
    idempotency_key: str


Outcome = Accepted | GatewayError


class Unexpected(GatewayError):
    """A bug met on one message: reported on it, the others go on."""

    def __init__(self) -> None:
        super().__init__("The gateway failed unexpectedly on this item (see its log).")


@dataclass
class _Run:
    """Messages checked and signed, waiting to be stored together; the keys they hold."""

    items: list[tuple[int, Checked, tuple[bytes, str]]] = field(default_factory=list)
    keys: set[str] = field(default_factory=set)

    def takes(self, message_type: str, keys: set[str]) -> bool:
        """Whether a message may join without the run being stored first."""
        if not self.items:
            return True
        same_type = self.items[0][1].spec.type == message_type
        return same_type and not self.keys & keys and len(self.items) < RUN


def _keys(checked: Checked) -> set[str]:
    """What two messages of one run must not share: the first must be stored first."""
    keys = {f"guid:{checked.guid}"}
    for doc in checked.docs:
        keys.add(f"doc:{doc.guid}")
        if doc.business_key:
            keys.add(f"key:{doc.business_key}")
    return keys


def declare_many(rt: Runtime, org_id: str, submissions: Sequence[Submission]) -> list[Outcome]:
    """One outcome per submission, in order: Accepted (``replayed`` for a key seen before)
    or the error a single submission would get. Stops after the first 503 (the signing key
    unplugged): the list is then shorter, its last outcome that error, and nothing after it
    was tried."""
    outcomes: dict[int, Outcome] = _replays(rt, org_id, submissions)
    run = _Run()
    for i, sub in enumerate(submissions):
        if i in outcomes:
            continue
        try:
            checked = check_submission(rt, sub.body, sub.content_type, sub.idempotency_key)
            keys = _keys(checked)
            if not run.takes(checked.spec.type, keys):
                _store_run(rt, org_id, run, submissions, outcomes)
            if any(d.app_type != "1" for d in checked.docs):
                outcomes[i] = _single(rt, org_id, sub)
            else:
                prematch(rt, checked.spec, checked.elements)
                run.items.append((i, checked, sign_message(rt, org_id, checked.root)))
                run.keys |= keys
        except GatewayError as exc:
            outcomes[i] = exc
        except OperationalError:
            raise
        except Exception:  # a bug must not hold up the other messages
            log.exception("bulk declaration: item %s failed unexpectedly", i + 1)
            outcomes[i] = Unexpected()
        error = outcomes.get(i)
        if isinstance(error, GatewayError) and error.status == 503:
            _store_run(rt, org_id, run, submissions, outcomes)
            return [outcomes[n] for n in range(i + 1) if n in outcomes]
    _store_run(rt, org_id, run, submissions, outcomes)
    return [outcomes[i] for i in range(len(submissions))]


def _replays(rt: Runtime, org_id: str, submissions: Sequence[Submission]) -> dict[int, Outcome]:
    """The submissions whose Idempotency-Key made a message before (a batch run again)."""
    keys = [s.idempotency_key for s in submissions]
    out: dict[int, Outcome] = {}
    with rt.engine.connect() as conn:
        found = repo.messages_by_idempotency_keys(conn, org_id, keys)
        for i, sub in enumerate(submissions):
            if sub.idempotency_key in found:
                try:
                    body_hash = hashlib.sha256(sub.body).hexdigest()
                    out[i] = replayed(conn, found[sub.idempotency_key], body_hash)
                except GatewayError as exc:
                    out[i] = exc
    return out


def _single(rt: Runtime, org_id: str, sub: Submission) -> Outcome:
    try:
        return declare(rt, org_id, sub.body, sub.content_type, sub.idempotency_key)
    except GatewayError as exc:
        return exc


def _store_run(
    rt: Runtime,
    org_id: str,
    run: _Run,
    submissions: Sequence[Submission],
    outcomes: dict[int, Outcome],
) -> None:
    """Screen and write the run in one transaction; what the screen leaves goes one by one.
    Empties the run."""
    if not run.items:
        return
    items, run.items, run.keys = run.items, [], set()
    arrived = arrivals(rt, [n for _i, c, _s in items for n in logistics_numbers(rt, c)])
    audited = (Actor("org", org_id), ACTION)
    stored: list[tuple[int, Stored]] = []
    alone: list[int] = []
    try:
        planned = [
            (i, Stored(org_id, c, s, plan_writes(rt, org_id, c, by, arrived), audited))
            for i, c, (s, by) in items
        ]
        with rt.engine.begin() as conn:
            taken = _taken(conn, [c for _i, c, _s in items])
            for i, item in planned:
                if item.checked.guid in taken:
                    alone.append(i)
                    continue
                plan, spec = item.plan, item.checked.spec
                at = plan.declarations[0]["created_at"]
                try:
                    check_quota(rt, conn, spec.root, spec.document or "", plan.quota, at)
                except BusinessRuleViolation as exc:
                    outcomes[i] = exc
                    continue
                stored.append((i, item))
            write_accepted(conn, [s for _i, s in stored])
    except OperationalError:
        raise  # the database is locked or gone: the caller retries the whole lot later
    except IntegrityError:
        alone, stored = [i for i, _c, _s in items], []  # a twin won a key: one by one
    except Exception:
        log.exception("bulk declaration: a run of %s failed; declaring one by one", len(items))
        alone, stored = [i for i, _c, _s in items], []
    rt.ring([d["id"] for _i, s in stored for d in s.plan.dispatches])
    for i, s in stored:
        outcomes[i] = accepted(s)
    for i in alone:
        outcomes[i] = _single(rt, org_id, submissions[i])


def _taken(conn: Any, checked: list[Checked]) -> set[str]:
    """The guids of the messages whose guid, documents or business keys the database holds
    already (their refusal, or a change's, is the single path's to explain)."""
    taken = repo.declared_guids(conn, [c.guid for c in checked])
    by_doc = {d.guid: c.guid for c in checked for d in c.docs}
    by_key = {d.business_key: c.guid for c in checked for d in c.docs if d.business_key}
    if checked:
        spec_type = checked[0].spec.type
        for row in repo.find_declarations_by_guid(conn, spec_type, list(by_doc)):
            taken.add(by_doc[row["doc_guid"]])
    for row in repo.find_active_by_business_keys(conn, list(by_key)):
        taken.add(by_key[row["business_key"]])
    return taken
