"""Deliver one dispatch (a signed message to one authority): claim, send, record.

At-least-once transport, exactly-once effect: the claim is a conditional UPDATE with a lease,
the same stored signed bytes go out under the same dispatch id on every attempt, and only the
attempt that holds the claim may record the outcome.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import timedelta

from gateway.domain.errors import RetryableAuthorityError, TerminalAuthorityError
from gateway.persistence import repository as repo
from gateway.services.runtime import Runtime
from gateway.services.status import refresh_status


@dataclass(frozen=True)
class DeliveryOutcome:
    dispatch_id: str
    result: str  # sent | retry | failed | skipped
    attempt: int | None = None
    error: str | None = None


def backoff(rt: Runtime, attempt: int) -> float:
    """Exponential backoff with full jitter, capped."""
    ceiling = min(rt.retry_max_seconds, rt.retry_base_seconds * (2 ** max(0, attempt - 1)))
    return random.uniform(ceiling / 2, ceiling)


def deliver(rt: Runtime, dispatch_id: str) -> DeliveryOutcome:
    """Send the dispatch if it is ours to send; safe to run twice or concurrently."""
    at = repo.now()
    with rt.engine.begin() as conn:
        attempt = repo.claim_dispatch(conn, dispatch_id, at, timedelta(seconds=rt.lease_seconds))
        if attempt is None:
            return DeliveryOutcome(dispatch_id, "skipped")
        dispatch = repo.get_dispatch(conn, dispatch_id)
        assert dispatch is not None
        message = repo.get_message(conn, dispatch["message_id"])
        assert message is not None
        sender_id = repo.org_dxp_id(conn, message["org_id"])
    authority = dispatch["authority"]
    client = rt.clients[authority]
    try:
        client.send(dispatch_id, message["type"], message["signed_xml"], sender_id)
    except RetryableAuthorityError as exc:
        _record_failure(rt, dispatch, attempt, str(exc), retry=True)
        return DeliveryOutcome(dispatch_id, "retry", attempt, str(exc))
    except TerminalAuthorityError as exc:
        _record_failure(rt, dispatch, attempt, str(exc), retry=False)
        return DeliveryOutcome(dispatch_id, "failed", attempt, str(exc))
    _record_sent(rt, dispatch, attempt)
    return DeliveryOutcome(dispatch_id, "sent", attempt)


def _record_sent(rt: Runtime, dispatch: dict, attempt: int) -> None:  # type: ignore[type-arg]
    at = repo.now()
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
        for decl in repo.declarations_of_message(conn, dispatch["message_id"]):
            status = refresh_status(conn, decl, source=dispatch["authority"], at=at)
            repo.insert_events(
                conn,
                [
                    dict(
                        declaration_id=decl["id"],
                        at=at,
                        kind="sent",
                        source=dispatch["authority"],
                        status=status,
                        info=f"sent to {dispatch['authority']} (attempt {attempt}, "
                        f"dispatch {dispatch['id']})",
                    )
                ],
            )


def _record_failure(
    rt: Runtime,
    dispatch: dict,
    attempt: int,
    error: str,  # type: ignore[type-arg]
    *,
    retry: bool,
) -> None:
    at = repo.now()
    delay = backoff(rt, attempt)
    values = (
        dict(state="pending", next_attempt_at=at + timedelta(seconds=delay))
        if retry
        else dict(state="failed")
    )
    with rt.engine.begin() as conn:
        if not repo.finish_attempt(
            conn, dispatch["id"], attempt, lease_until=None, last_error=error[:1000], **values
        ):
            return
        for decl in repo.declarations_of_message(conn, dispatch["message_id"]):
            if retry:
                info = (
                    f"{dispatch['authority']} not reached (attempt {attempt}): {error}; "
                    f"retrying in {delay:.1f} s"
                )
                kind, status = "send_retry", decl["status"]
            else:
                info = f"{dispatch['authority']} refused the message: {error}"
                kind, status = "send_failed", "rejected"
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
