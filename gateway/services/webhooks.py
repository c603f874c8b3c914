"""Webhook use cases: register (secret shown once), list, delete, deliveries, a test ping.

A new webhook starts at the newest event: it gets the changes from its registration on;
the history is in the events feed (``GET /api/v1/events``).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from gateway.domain.errors import NotFound, Violation
from gateway.domain.webhooks import PING, WebhookInvalid, event_violations, url_violations
from gateway.persistence import event_log
from gateway.persistence import repository as repo
from gateway.persistence import webhooks as store
from gateway.persistence.ids import new_id

SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix for secret scanners, not a secret)
MAX_WEBHOOKS_PER_ORG = 20
MAX_DESCRIPTION = 200


@dataclass(frozen=True)
class Registered:
    webhook: Any  # the stored row
    secret: str  # shown to the caller once, never again


def _encodable(text: str) -> bool:
    """Whether ``text`` is real Unicode (JSON may carry lone surrogates; a database may not)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _violations(payload: dict[str, Any]) -> list[Violation]:
    out = url_violations(payload.get("url")) + event_violations(payload.get("events"))
    description = payload.get("description")
    if description is not None and (
        not isinstance(description, str)
        or len(description) > MAX_DESCRIPTION
        or not _encodable(description)
    ):
        out.append(
            Violation(
                "/description",
                "webhook.description",
                f"a string of at most {MAX_DESCRIPTION} characters",
            )
        )
    unknown = sorted(set(payload) - {"url", "events", "description"})
    out += [Violation(f"/{k}"[:80], "webhook.field.unknown", "not a field") for k in unknown]
    return out


def register(engine: Engine, org_id: str, payload: dict[str, Any]) -> Registered:
    """Validate and store a webhook; every problem is reported at once, with its field."""
    violations = _violations(payload)
    if violations:
        raise WebhookInvalid(
            f"The webhook has {len(violations)} problem(s).", violations=violations
        )
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    webhook_id = new_id("whk")
    with engine.begin() as conn:
        if store.count_webhooks(conn, org_id) >= MAX_WEBHOOKS_PER_ORG:
            raise WebhookInvalid(
                f"An organisation may register at most {MAX_WEBHOOKS_PER_ORG} webhooks.",
                violations=[Violation("/", "webhook.too_many", "delete one first")],
            )
        store.insert_webhook(
            conn,
            id=webhook_id,
            org_id=org_id,
            url=payload["url"].strip(),
            events=list(dict.fromkeys(payload["events"])),
            description=payload.get("description"),
            secret=secret,
            cursor=event_log.latest_id(conn),
            created_at=repo.now(),
        )
        row = store.find_webhook(conn, org_id, webhook_id)
    return Registered(row, secret)


def get_webhook(engine: Engine, org_id: str, webhook_id: str) -> Any:
    """The caller's webhook; another organisation's is answered as if it did not exist."""
    with engine.connect() as conn:
        row = store.find_webhook(conn, org_id, webhook_id)
    if row is None:
        raise NotFound(f"No webhook {webhook_id[:60]} is registered by you.")
    return row


def list_webhooks(engine: Engine, org_id: str) -> list[Any]:
    with engine.connect() as conn:
        return store.list_webhooks(conn, org_id)


def delete(engine: Engine, org_id: str, webhook_id: str) -> None:
    """Stop sending to a webhook: it leaves the API and its waiting deliveries are cancelled."""
    get_webhook(engine, org_id, webhook_id)
    with engine.begin() as conn:
        store.delete_webhook(conn, webhook_id, repo.now())


def deliveries(
    engine: Engine, org_id: str, webhook_id: str, *, before: str | None, limit: int
) -> tuple[list[Any], dict[str, list[Any]]]:
    """A webhook's deliveries, newest first, and every attempt of each."""
    get_webhook(engine, org_id, webhook_id)
    with engine.connect() as conn:
        rows = store.list_deliveries(conn, webhook_id, before=before, limit=limit)
        attempts = store.attempts_of(conn, [r["id"] for r in rows])
    return rows, attempts


def ping(engine: Engine, org_id: str, webhook_id: str) -> str:
    """Queue a ``webhook.ping`` delivery (signed and retried like any other); its id."""
    webhook = get_webhook(engine, org_id, webhook_id)
    at = repo.now()
    delivery_id = new_id("whd")
    body = {
        "id": f"ping_{delivery_id}",
        "type": PING,
        "created_at": at.isoformat().replace("+00:00", "Z"),
        "data": {"webhook_id": webhook["id"], "url": webhook["url"]},
    }
    with engine.begin() as conn:
        store.insert_deliveries(
            conn,
            [
                dict(
                    id=delivery_id,
                    webhook_id=webhook_id,
                    event_id=None,
                    event_type=PING,
                    payload=json.dumps(body, separators=(",", ":")).encode(),
                    state="pending",
                    attempts=0,
                    next_attempt_at=at,
                    created_at=at,
                )
            ],
        )
    return delivery_id
