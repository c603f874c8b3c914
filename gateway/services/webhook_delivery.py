"""The webhook outbox: fan the events log out to deliveries, then send each one until a 2xx.

Fan-out reads, per webhook, the status changes after its cursor and writes one delivery per
(webhook, event) in the same transaction that moves the cursor, so a crash repeats nothing
and loses nothing. Sending claims a delivery with a conditional UPDATE and a lease, POSTs the
stored bytes with a fresh signature, records the attempt, and schedules the next try with
backoff and jitter; a delivery recorded as delivered is never claimed again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import httpx
from sqlalchemy import Engine

from gateway.domain.webhooks import STATUS_CHANGED, RetryPolicy, sign, wants
from gateway.persistence import event_log
from gateway.persistence import repository as repo
from gateway.persistence import webhooks as store
from gateway.persistence.ids import new_id
from gateway.services.events_feed import event_bytes

EVENTS_PER_PASS = 500  # per webhook
WEBHOOKS_PER_PASS = 200
USER_AGENT = "single-window-gateway-webhooks/1"


@dataclass(frozen=True)
class WebhookConfig:
    """What fan-out and sending need from the settings."""

    retry: RetryPolicy
    lease_seconds: int
    connect_timeout: float
    timeout: float
    settle: float


def fan_out(engine: Engine, cfg: WebhookConfig) -> list[str]:
    """Create the deliveries of every event new to each webhook; returns their ids."""
    with engine.connect() as conn:
        upto = event_log.horizon(conn, repo.now(), cfg.settle)
        hooks = store.webhooks_behind(conn, upto, WEBHOOKS_PER_PASS)
    created: list[str] = []
    for hook in hooks:
        created += _fan_out_one(engine, hook, upto)
    return created


def _fan_out_one(engine: Engine, hook: Any, upto: int) -> list[str]:
    with engine.connect() as conn:
        rows = event_log.status_changes(
            conn, hook["org_id"], after=hook["cursor"], upto=upto, limit=EVENTS_PER_PASS
        )
    cursor = rows[-1]["id"] if len(rows) == EVENTS_PER_PASS else upto
    at = repo.now()
    deliveries = [
        dict(
            id=new_id("whd"),
            webhook_id=hook["id"],
            event_id=r["id"],
            event_type=STATUS_CHANGED,
            payload=event_bytes(r),
            state="pending",
            attempts=0,
            next_attempt_at=at,
            created_at=at,
        )
        for r in rows
        if wants(hook["events"], r["status"])
    ]
    with engine.begin() as conn:
        if not store.advance_cursor(conn, hook["id"], hook["cursor"], cursor):
            return []  # another fan-out moved it first: its deliveries stand
        store.insert_deliveries(conn, deliveries)
    return [d["id"] for d in deliveries]


@dataclass(frozen=True)
class SendOutcome:
    delivery_id: str
    result: str  # delivered | retry | failed | cancelled | skipped
    attempt: int | None = None
    http_status: int | None = None
    error: str | None = None


def headers(delivery: Any, attempt: int, timestamp: int) -> dict[str, str]:
    """The signed headers of one attempt; ``Webhook-Id`` is the same on every attempt."""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "Webhook-Id": delivery["id"],
        "Webhook-Timestamp": str(timestamp),
        "Webhook-Signature": sign(delivery["secret"], timestamp, delivery["payload"]),
        "Webhook-Attempt": str(attempt),
    }


def send(engine: Engine, cfg: WebhookConfig, delivery_id: str, http: httpx.Client) -> SendOutcome:
    """Make one attempt if the delivery is ours to send; safe to run twice or concurrently."""
    with engine.begin() as conn:
        attempt = store.claim_delivery(
            conn, delivery_id, repo.now(), timedelta(seconds=cfg.lease_seconds)
        )
        delivery = store.get_delivery(conn, delivery_id) if attempt is not None else None
    if attempt is None or delivery is None:
        return SendOutcome(delivery_id, "skipped")
    if delivery["webhook_deleted_at"] is not None:
        with engine.begin() as conn:
            store.finish_delivery(
                conn, delivery_id, attempt, state="cancelled", last_error="webhook deleted"
            )
        return SendOutcome(delivery_id, "cancelled", attempt)
    started_at, started = repo.now(), time.monotonic()
    status, error = _post(http, delivery, attempt)
    duration_ms = int((time.monotonic() - started) * 1000)
    return _record(engine, cfg, delivery, attempt, started_at, duration_ms, status, error)


def _post(http: httpx.Client, delivery: Any, attempt: int) -> tuple[int | None, str | None]:
    """POST once; (HTTP status, None) on a 2xx, else what went wrong. Redirects are not
    followed and at most a short excerpt of the answer is read."""
    try:
        with http.stream(
            "POST",
            delivery["url"],
            content=delivery["payload"],
            headers=headers(delivery, attempt, int(time.time())),
        ) as resp:
            if 200 <= resp.status_code < 300:
                return resp.status_code, None
            excerpt = b""
            for chunk in resp.iter_bytes():
                excerpt += chunk
                if len(excerpt) >= 200:
                    break
            text = excerpt[:200].decode(errors="replace").strip()
            return resp.status_code, f"HTTP {resp.status_code}" + (f": {text}" if text else "")
    except Exception as exc:  # the receiver's failures are data here, never our crash
        return None, f"{type(exc).__name__}: {exc}"[:500]


def _record(
    engine: Engine,
    cfg: WebhookConfig,
    delivery: Any,
    attempt: int,
    started_at: Any,
    duration_ms: int,
    status: int | None,
    error: str | None,
) -> SendOutcome:
    at = repo.now()
    values: dict[str, Any] = dict(last_status=status, last_error=error)
    if error is None:
        values.update(state="delivered", delivered_at=at)
        result = "delivered"
    else:
        created_at = repo.as_utc(delivery["created_at"])
        age = (at - created_at).total_seconds() if created_at is not None else 0.0
        delay = cfg.retry.next_try(attempt, age)
        if delay is None:
            values.update(state="failed", last_error=f"gave up after {attempt} attempt(s): {error}")
            result = "failed"
        else:
            values.update(state="pending", next_attempt_at=at + timedelta(seconds=delay))
            result = "retry"
    with engine.begin() as conn:
        store.insert_attempt(
            conn,
            delivery_id=delivery["id"],
            attempt=attempt,
            at=started_at,
            http_status=status,
            error=error,
            duration_ms=duration_ms,
        )
        if not store.finish_delivery(conn, delivery["id"], attempt, **values):
            result = "stale"  # our lease ran out; the attempt is kept, the outcome is not ours
    return SendOutcome(delivery["id"], result, attempt, status, error)
