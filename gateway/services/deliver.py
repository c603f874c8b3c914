"""Deliver one dispatch (a signed message to one authority): claim, send, record.

At-least-once transport, exactly-once effect: the claim is a conditional UPDATE with a lease,
the same stored signed bytes go out under the same dispatch id on every attempt, and only the
attempt that holds the claim may record the outcome.
"""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from gateway.domain.errors import RetryableAuthorityError, TerminalAuthorityError
from gateway.logs import bind, bound, current_request_id
from gateway.persistence import repository as repo
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


def deliver(rt: Runtime, dispatch_id: str) -> DeliveryOutcome:
    """Send the dispatch if it is ours to send; safe to run twice or concurrently. Its log
    lines carry the dispatch id and the request that caused it."""
    with bound(dispatch_id=dispatch_id):
        outcome = _deliver(rt, dispatch_id)
        log.info(
            "dispatch %s: %s (attempt %s)%s",
            dispatch_id,
            outcome.result,
            outcome.attempt,
            f": {outcome.error}" if outcome.error else "",
        )
        return outcome


def _deliver(rt: Runtime, dispatch_id: str) -> DeliveryOutcome:
    at = repo.now()
    with rt.engine.begin() as conn:
        dispatch = repo.get_dispatch(conn, dispatch_id)
        if dispatch is None:
            return DeliveryOutcome(dispatch_id, "skipped")
        # The outer ``bound`` resets the context, so this bind needs no unbind of its own.
        bind(
            request_id=current_request_id() or dispatch["request_id"],
            declaration_id=dispatch["declaration_id"],
            message_id=dispatch["message_id"],
        )
        if hold_for_outage(conn, dispatch, at) is not None:
            return DeliveryOutcome(dispatch_id, "held")  # no attempt: it goes out at the end
        attempt = repo.claim_dispatch(conn, dispatch_id, at, timedelta(seconds=rt.lease_seconds))
        if attempt is None:
            return DeliveryOutcome(dispatch_id, "skipped")
        message = repo.get_message(conn, dispatch["message_id"])
        assert message is not None
        own = dispatch["kind"] == "declaration"
        sender_id = repo.org_dxp_id(conn, message["org_id"]) if own else rt.gateway_dxp_id
    payload = message["signed_xml"] if own else dispatch["payload"]
    msg_type = message["type"] if own else dispatch["msg_type"]
    try:
        rt.clients[dispatch["authority"]].send(dispatch_id, msg_type, payload, sender_id)
    except RetryableAuthorityError as exc:
        _record_failure(rt, dispatch, attempt, str(exc), retry=True)
        return DeliveryOutcome(dispatch_id, "retry", attempt, str(exc))
    except TerminalAuthorityError as exc:
        _record_failure(rt, dispatch, attempt, str(exc), retry=False)
        return DeliveryOutcome(dispatch_id, "failed", attempt, str(exc))
    _record_sent(rt, dispatch, attempt)
    return DeliveryOutcome(dispatch_id, "sent", attempt)


def _targets(conn: Any, dispatch: Any) -> list[Any]:
    """The declarations a dispatch speaks for: one for a release, all of its message else."""
    if dispatch["declaration_id"]:
        found = repo.get_declaration(conn, dispatch["declaration_id"])
        return [found] if found is not None else []
    return repo.declarations_of_message(conn, dispatch["message_id"])


def _record_sent(rt: Runtime, dispatch: Any, attempt: int) -> None:
    at = repo.now()
    ring: list[str] = []
    what = KIND_TEXT.get(dispatch["kind"], dispatch["kind"])
    with rt.engine.begin() as conn:
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
                status = refresh_status(
                    conn, rt, decl, source=dispatch["authority"], at=at, ring=ring
                )
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
    rt.ring(ring)


def _record_failure(rt: Runtime, dispatch: Any, attempt: int, error: str, *, retry: bool) -> None:
    at = repo.now()
    delay = backoff(rt, attempt)
    values = (
        dict(state="pending", next_attempt_at=at + timedelta(seconds=delay))
        if retry
        else dict(state="failed")
    )
    own = dispatch["kind"] == "declaration"
    what = KIND_TEXT.get(dispatch["kind"], dispatch["kind"])
    with rt.engine.begin() as conn:
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
