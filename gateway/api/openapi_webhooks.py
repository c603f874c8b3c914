"""The OpenAPI description of the webhooks and the events feed (merged into openapi.py)."""

from __future__ import annotations

from typing import Any

from gateway.api.openapi import _op
from gateway.domain.webhooks import EVENT_TYPES

WEBHOOK_ID = [{"name": "webhook_id", "in": "path", "required": True, "schema": {"type": "string"}}]
STRING_OR_NULL = {"type": ["string", "null"]}

EVENT = {
    "type": "object",
    "required": ["id", "type", "created_at", "data"],
    "properties": {
        "id": {"type": "string", "description": "stable event id (evt_<n>): the cursor too"},
        "type": {"type": "string", "enum": ["declaration.status_changed"]},
        "created_at": {"type": "string", "format": "date-time"},
        "data": {
            "type": "object",
            "properties": {
                "declaration_id": {"type": "string"},
                "declaration_type": {"type": "string"},
                "order_no": STRING_OR_NULL,
                "logistics_no": STRING_OR_NULL,
                "status": {"type": "string"},
                "previous_status": STRING_OR_NULL,
                "source": {"type": "string"},
                "kind": {"type": "string"},
                "code": STRING_OR_NULL,
                "info": STRING_OR_NULL,
                "links": {"type": "object"},
            },
        },
    },
}
WEBHOOK = {
    "type": "object",
    "required": ["id", "url", "events"],
    "properties": {
        "id": {"type": "string"},
        "url": {"type": "string"},
        "events": {"type": "array", "items": {"type": "string", "enum": list(EVENT_TYPES)}},
        "description": STRING_OR_NULL,
        "created_at": {"type": "string", "format": "date-time"},
        "secret": {"type": "string", "description": "only in the answer to POST, once"},
        "links": {"type": "object"},
    },
}
ATTEMPT = {
    "type": "object",
    "properties": {
        "attempt": {"type": "integer"},
        "at": {"type": "string", "format": "date-time"},
        "http_status": {"type": ["integer", "null"]},
        "error": STRING_OR_NULL,
        "duration_ms": {"type": "integer"},
    },
}
DELIVERY = {
    "type": "object",
    "properties": {
        "id": {"type": "string"},
        "event_id": STRING_OR_NULL,
        "event_type": {"type": "string"},
        "state": {
            "type": "string",
            "enum": ["pending", "sending", "delivered", "failed", "cancelled"],
        },
        "created_at": {"type": "string", "format": "date-time"},
        "next_attempt_at": STRING_OR_NULL,
        "delivered_at": STRING_OR_NULL,
        "last_status": {"type": ["integer", "null"]},
        "last_error": STRING_OR_NULL,
        "attempt_count": {"type": "integer"},
        "attempts": {"type": "array", "items": ATTEMPT},
    },
}
REGISTER_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["url", "events"],
                "additionalProperties": False,
                "properties": {
                    "url": {"type": "string", "format": "uri", "maxLength": 2000},
                    "events": {
                        "type": "array",
                        "minItems": 1,
                        "items": {"type": "string", "enum": list(EVENT_TYPES)},
                    },
                    "description": {"type": "string", "maxLength": 200},
                },
            }
        }
    },
}


def _query(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


def _with_schema(op: dict[str, Any], ok: str, schema: dict[str, Any]) -> dict[str, Any]:
    op["responses"][ok]["content"]["application/json"]["schema"] = schema
    return op


def _no_content(op: dict[str, Any]) -> dict[str, Any]:
    op["responses"]["204"] = {"description": "No content"}
    return op


def _list_of(key: str, item: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": {key: {"type": "array", "items": item}, **extra}}


def paths() -> dict[str, Any]:
    """The paths of /api/v1/webhooks and /api/v1/events."""
    deliveries = _list_of("items", DELIVERY, next_cursor=STRING_OR_NULL)
    feed = _list_of("events", EVENT, next={"type": "string"}, has_more={"type": "boolean"})
    return {
        "/api/v1/webhooks": {
            "post": _with_schema(
                _op(
                    "Register a webhook (the signing secret is shown once)",
                    "201",
                    body=REGISTER_BODY,
                    errors=("400", "422"),
                ),
                "201",
                WEBHOOK,
            ),
            "get": _with_schema(
                _op("List your webhooks", "200", errors=()), "200", _list_of("items", WEBHOOK)
            ),
        },
        "/api/v1/webhooks/{webhook_id}": {
            "get": _with_schema(
                _op("One of your webhooks", "200", params=WEBHOOK_ID, errors=("404",)),
                "200",
                WEBHOOK,
            ),
            "delete": _no_content(
                _op(
                    "Delete a webhook; waiting deliveries are cancelled",
                    "204",
                    params=WEBHOOK_ID,
                    errors=("404",),
                )
            ),
        },
        "/api/v1/webhooks/{webhook_id}/deliveries": {
            "get": _with_schema(
                _op(
                    "A webhook's deliveries, newest first, with every attempt",
                    "200",
                    params=[
                        *WEBHOOK_ID,
                        _query("limit", "1 to 200 (default 50)"),
                        _query("cursor", "next_cursor of the previous page"),
                    ],
                    errors=("400", "404"),
                ),
                "200",
                deliveries,
            )
        },
        "/api/v1/webhooks/{webhook_id}/test": {
            "post": _op(
                "Send a signed webhook.ping to the webhook",
                "202",
                params=WEBHOOK_ID,
                errors=("404",),
            )
        },
        "/api/v1/events": {
            "get": _with_schema(
                _op(
                    "Status changes of the declarations you see, oldest first",
                    "200",
                    params=[
                        _query("after", "an event id (evt_<n>): the next of the previous page"),
                        _query("limit", "1 to 500 (default 100)"),
                    ],
                    errors=("400",),
                ),
                "200",
                feed,
            )
        },
    }
