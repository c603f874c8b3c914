"""/api/v1/webhooks (register, list, delete, deliveries, test) and /api/v1/events (the feed)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for
from sqlalchemy import Engine

from gateway.api.auth import current_principal
from gateway.domain.errors import MalformedRequest, Violation
from gateway.persistence import repository as repo
from gateway.services import webhooks as service
from gateway.services.events_feed import event_id, parse_cursor, read_feed
from gateway.services.runtime import Runtime

bp = Blueprint("webhooks", __name__, url_prefix="/api/v1/webhooks")
events_bp = Blueprint("events", __name__, url_prefix="/api/v1/events")


def _rt() -> Runtime:
    return current_app.extensions["gateway.runtime"]()  # type: ignore[no-any-return]


def _engine() -> Engine:
    return _rt().engine


def _org() -> str:
    return current_principal(_rt()).org_id


def _iso(value: Any) -> str | None:
    value = repo.as_utc(value)
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _limit(default: int, most: int) -> int:
    raw = request.args.get("limit", str(default))
    if not raw.isdigit() or len(raw) > 6:
        raise MalformedRequest(
            "limit must be a whole number.",
            violations=[Violation("?limit", "query.limit", f"a number from 1 to {most}")],
        )
    return max(1, min(most, int(raw)))


def _webhook(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "url": row["url"],
        "events": row["events"],
        "description": row["description"],
        "created_at": _iso(row["created_at"]),
        "links": {
            "self": url_for("webhooks.get_one", webhook_id=row["id"]),
            "deliveries": url_for("webhooks.deliveries", webhook_id=row["id"]),
            "test": url_for("webhooks.test", webhook_id=row["id"]),
        },
    }


@bp.post("")
def register() -> tuple[Response, int]:
    """Register a URL for status changes; the signing secret is in this answer only."""
    payload = request.get_json(silent=True)
    if not isinstance(payload, dict):
        raise MalformedRequest(
            'Send JSON {"url": "https://...", "events": ["declaration.status_changed"]}.',
            violations=[Violation("/", "webhook.body", "a JSON object is required")],
        )
    done = service.register(_engine(), _org(), payload)
    resp = jsonify({**_webhook(done.webhook), "secret": done.secret})
    resp.headers["Location"] = url_for("webhooks.get_one", webhook_id=done.webhook["id"])
    return resp, 201


@bp.get("")
def list_all() -> Response:
    """Your organisation's webhooks (never their secrets)."""
    return jsonify({"items": [_webhook(r) for r in service.list_webhooks(_engine(), _org())]})


@bp.get("/<webhook_id>")
def get_one(webhook_id: str) -> Response:
    """One of your webhooks; anyone else's is 404."""
    return jsonify(_webhook(service.get_webhook(_engine(), _org(), webhook_id)))


@bp.delete("/<webhook_id>")
def delete_one(webhook_id: str) -> tuple[str, int]:
    """Stop sending to a webhook; deliveries still waiting are cancelled."""
    service.delete(_engine(), _org(), webhook_id)
    return "", 204


def _attempt(a: Any) -> dict[str, Any]:
    return {
        "attempt": a["attempt"],
        "at": _iso(a["at"]),
        "http_status": a["http_status"],
        "error": a["error"],
        "duration_ms": a["duration_ms"],
    }


def _delivery(row: Any, attempts: list[Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "event_id": event_id(row["event_id"]) if row["event_id"] is not None else None,
        "event_type": row["event_type"],
        "state": row["state"],
        "created_at": _iso(row["created_at"]),
        "next_attempt_at": _iso(row["next_attempt_at"]) if row["state"] == "pending" else None,
        "delivered_at": _iso(row["delivered_at"]),
        "last_status": row["last_status"],
        "last_error": row["last_error"],
        "attempt_count": row["attempts"],
        "attempts": [_attempt(a) for a in attempts],
    }


@bp.get("/<webhook_id>/deliveries")
def deliveries(webhook_id: str) -> Response:
    """A webhook's deliveries, newest first, each with every attempt (time, status, error)."""
    limit = _limit(50, 200)
    rows, attempts = service.deliveries(
        _engine(), _org(), webhook_id, before=request.args.get("cursor") or None, limit=limit + 1
    )
    items = [_delivery(r, attempts[r["id"]]) for r in rows[:limit]]
    next_cursor = rows[limit - 1]["id"] if len(rows) > limit else None
    return jsonify({"items": items, "next_cursor": next_cursor})


@bp.post("/<webhook_id>/test")
def test(webhook_id: str) -> tuple[Response, int]:
    """Send a signed ``webhook.ping`` now (retried like any delivery)."""
    delivery_id = service.ping(_engine(), _org(), webhook_id)
    body = {
        "delivery_id": delivery_id,
        "links": {"deliveries": url_for("webhooks.deliveries", webhook_id=webhook_id)},
    }
    return jsonify(body), 202


@events_bp.get("")
def feed() -> Response:
    """Status changes of the declarations you see, oldest first, after the ``after`` cursor."""
    org = _org()
    after = parse_cursor(request.args.get("after"))
    settle = current_app.config["GATEWAY_SETTINGS"].events_settle_seconds
    page = read_feed(_engine(), org, after, _limit(100, 500), settle)
    return jsonify({"events": page.events, "next": page.next, "has_more": page.has_more})
