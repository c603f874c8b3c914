"""Deliver dispatches (signed messages to authorities): claim, send, record.

At-least-once transport, exactly-once effect: the claim is a conditional UPDATE with a lease,
the same stored signed bytes go out under the same dispatch id on every attempt, and only the
attempt that holds the claim may record the outcome.
"""

from __future__ import annotations

import contextvars
import logging
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy.exc import SQLAlchemyError

from gateway.domain.errors import RetryableAuthorityError, TerminalAuthorityError
from gateway.logs import bind, bound, current_request_id
from gateway.persistence import repository as repo
from gateway.persistence.outages import open_notices
from gateway.services.outages import hold_for_outage
from gateway.services.runtime import Runtime
from gateway.services.status import refresh_status

log = logging.getLogger(__name__)
KIND_TEXT = {"declaration": "message", "manifest": "manifest", "release": "release"}


@dataclass(frozen=True)
class DeliveryOutcome:
    dispatch_id: str
    result: str  # sent | retry | failed | skipped | held
    attempt: int | None = None
    error: str | None = None


def backoff(rt: Runtime, attempt: int) -> float:
    """Exponential backoff with full jitter, capped."""
    ceiling = min(rt.retry_max_seconds, rt.retry_base_seconds * (2 ** max(0, attempt - 1)))
    return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True)
class _Claim:
    """A dispatch taken for one attempt: what to send, and the log context it runs in."""

    dispatch: Any
    attempt: int
    payload: bytes
    msg_type: str
    sender_id: str
    context: contextvars.Context


@dataclass(frozen=True)
class _Sent:
    claim: _Claim
    at: Any  # when the authority answered (the timeline's time, not when it was recorded)
    error: str | None = None
    retry: bool = False


def deliver(rt: Runtime, dispatch_id: str) -> DeliveryOutcome:
    """Send the dispatch if it is ours to send; safe to run twice or concurrently. Its log
    lines carry the dispatch id and the request that caused it."""
    return deliver_many(rt, [dispatch_id])[0]


def deliver_many(
    rt: Runtime, dispatch_ids: Sequence[str], concurrency: int = 1
) -> list[DeliveryOutcome]:
    """Deliver the dispatches, up to ``concurrency`` at once; the outcomes in the order of
    ``dispatch_ids``. Each is claimed for its own attempt, but a wave of ``concurrency`` is
    claimed in one transaction and its results recorded in one more: on SQLite's single
    writer, two commits per dispatch were most of a delivery's cost. Waves, not the whole
    job at once, so no claim waits behind more sends than its own wave's (its lease runs
    meanwhile). A failure is the dispatch's own (retry, failed); if a wave's results
    cannot be recorded together, each is recorded alone."""
    outcomes: dict[str, DeliveryOutcome] = {}
    unique = list(dict.fromkeys(dispatch_ids))
    wave = max(1, concurrency)
    for start in range(0, len(unique), wave):
        contexts: dict[str, contextvars.Context] = {}
        claims = _claim_all(rt, unique[start : start + wave], outcomes, contexts)
        _record_all(rt, _send_all(rt, claims, concurrency), outcomes)
        for dispatch_id, context in contexts.items():
            context.run(_log, dispatch_id, outcomes[dispatch_id])
    return [outcomes[d] for d in dispatch_ids]


def _log(dispatch_id: str, outcome: DeliveryOutcome) -> None:
    with bound(dispatch_id=dispatch_id):  # bound already, unless it was not found
        log.info(
            "dispatch %s: %s (attempt %s)%s",
            dispatch_id,
            outcome.result,
            outcome.attempt,
            f": {outcome.error}" if outcome.error else "",
        )


def _claim_all(
    rt: Runtime,
    dispatch_ids: Sequence[str],
    outcomes: dict[str, DeliveryOutcome],
    contexts: dict[str, contextvars.Context],
) -> list[_Claim]:
    """Claim every dispatch in one transaction; each gets its own log context."""
    at = repo.now()
    claims: list[_Claim] = []
    with rt.engine.begin() as conn:
        notices = open_notices(conn, at)
        for dispatch_id in dispatch_ids:
            context = contexts[dispatch_id] = contextvars.copy_context()
            taken = context.run(_claim, rt, conn, dispatch_id, at, notices, context)
            if isinstance(taken, DeliveryOutcome):
                outcomes[dispatch_id] = taken
            else:
                claims.append(taken)
    return claims


def _claim(
    rt: Runtime,
    conn: Any,
    dispatch_id: str,
    at: Any,
    notices: Any,
    context: contextvars.Context,
) -> _Claim | DeliveryOutcome:
    """Take one dispatch (inside ``context``: the ids bound here stay in it)."""
    dispatch = repo.get_dispatch(conn, dispatch_id)
    if dispatch is None:
        return DeliveryOutcome(dispatch_id, "skipped")
    bind(
        dispatch_id=dispatch_id,
        request_id=current_request_id() or dispatch["request_id"],
        declaration_id=dispatch["declaration_id"],
        message_id=dispatch["message_id"],
    )
    if hold_for_outage(conn, dispatch, at, notices) is not None:
        return DeliveryOutcome(dispatch_id, "held")  # no attempt: it goes out at the end
    attempt = repo.claim_dispatch(conn, dispatch_id, at, timedelta(seconds=rt.lease_seconds))
    if attempt is None:
        return DeliveryOutcome(dispatch_id, "skipped")
    own = dispatch["kind"] == "declaration"
    if own:
        message = repo.get_message(conn, dispatch["message_id"])
        assert message is not None
        payload, msg_type = message["signed_xml"], message["type"]
        sender_id = repo.org_dxp_id(conn, message["org_id"])
    else:
        payload, msg_type, sender_id = dispatch["payload"], dispatch["msg_type"], rt.gateway_dxp_id
    return _Claim(dispatch, attempt, payload, msg_type, sender_id, context)


def _send(rt: Runtime, claim: _Claim) -> _Sent:
    d = claim.dispatch
    try:
        rt.clients[d["authority"]].send(d["id"], claim.msg_type, claim.payload, claim.sender_id)
    except RetryableAuthorityError as exc:
        return _Sent(claim, repo.now(), str(exc), retry=True)
    except TerminalAuthorityError as exc:
        return _Sent(claim, repo.now(), str(exc), retry=False)
    return _Sent(claim, repo.now())


def _send_all(rt: Runtime, claims: list[_Claim], concurrency: int) -> list[_Sent]:
    """A delivery is mostly a wait for the authority's answer: up to ``concurrency`` wait
    at once, each in its dispatch's log context."""
    if concurrency <= 1 or len(claims) <= 1:
        return [c.context.run(_send, rt, c) for c in claims]
    with ThreadPoolExecutor(min(concurrency, len(claims)), "deliver") as pool:
        futures = [pool.submit(c.context.copy().run, _send, rt, c) for c in claims]
    return [f.result() for f in futures]  # the pool's exit waited for every thread


def _record_all(rt: Runtime, sent: list[_Sent], outcomes: dict[str, DeliveryOutcome]) -> None:
    if not sent:
        return
    ring: list[str] = []
    try:
        with rt.engine.begin() as conn:
            for s in sent:
                outcomes[s.claim.dispatch["id"]] = s.claim.context.run(_record, rt, conn, s, ring)
    except SQLAlchemyError:
        log.warning("recording %d delivery results together failed; one by one", len(sent))
        ring = []
        for s in sent:
            with rt.engine.begin() as conn:
                outcomes[s.claim.dispatch["id"]] = s.claim.context.run(_record, rt, conn, s, ring)
    rt.ring(ring)


def _record(rt: Runtime, conn: Any, sent: _Sent, ring: list[str]) -> DeliveryOutcome:
    d, attempt = sent.claim.dispatch, sent.claim.attempt
    if sent.error is None:
        _record_sent(conn, rt, d, attempt, ring, sent.at)
        return DeliveryOutcome(d["id"], "sent", attempt)
    _record_failure(conn, rt, d, attempt, sent.error, retry=sent.retry, at=sent.at)
    return DeliveryOutcome(d["id"], "retry" if sent.retry else "failed", attempt, sent.error)


def _targets(conn: Any, dispatch: Any) -> list[Any]:
    """The declarations a dispatch speaks for: one for a release, all of its message else."""
    if dispatch["declaration_id"]:
        found = repo.get_declaration(conn, dispatch["declaration_id"])
        return [found] if found is not None else []
    return repo.declarations_of_message(conn, dispatch["message_id"])


def _record_sent(
    conn: Any, rt: Runtime, dispatch: Any, attempt: int, ring: list[str], at: Any
) -> None:
    what = KIND_TEXT.get(dispatch["kind"], dispatch["kind"])
    if not repo.finish_attempt(
        conn,
        dispatch["id"],
        attempt,
        state="sent",
        sent_at=at,
        lease_until=None,
        last_error=None,
    ):
        return
    for decl in _targets(conn, dispatch):
        status = decl["status"]
        if dispatch["kind"] == "declaration":
            status = refresh_status(conn, rt, decl, source=dispatch["authority"], at=at, ring=ring)
        repo.insert_events(
            conn,
            [
                dict(
                    declaration_id=decl["id"],
                    at=at,
                    kind=f"{what}_sent" if what != "message" else "sent",
                    source=dispatch["authority"],
                    status=status,
                    info=f"{what} sent to {dispatch['authority']} (attempt {attempt}, "
                    f"dispatch {dispatch['id']})",
                )
            ],
        )


def _record_failure(
    conn: Any, rt: Runtime, dispatch: Any, attempt: int, error: str, *, retry: bool, at: Any
) -> None:
    delay = backoff(rt, attempt)
    values = (
        dict(state="pending", next_attempt_at=at + timedelta(seconds=delay))
        if retry
        else dict(state="failed")
    )
    own = dispatch["kind"] == "declaration"
    what = KIND_TEXT.get(dispatch["kind"], dispatch["kind"])
    if not repo.finish_attempt(
        conn, dispatch["id"], attempt, lease_until=None, last_error=error[:1000], **values
    ):
        return
    for decl in _targets(conn, dispatch):
        status = decl["status"]
        if retry:
            kind = "send_retry"
            info = (
                f"{dispatch['authority']} not reached with the {what} (attempt "
                f"{attempt}): {error}; retrying in {delay:.1f} s"
            )
        else:
            kind = "send_failed"
            info = f"{dispatch['authority']} refused the {what}: {error}"
            if own and status not in ("rejected", "cancelled"):
                status = "rejected"  # the authority will never see this declaration
                repo.update_declaration(conn, decl["id"], status=status)
        repo.insert_events(
            conn,
            [
                dict(
                    declaration_id=decl["id"],
                    at=at,
                    kind=kind,
                    source=dispatch["authority"],
                    status=status,
                    info=info[:2000],
                )
            ],
        )
