"""GET /api/v1/openapi.json: the served description of the public API (DESIGN.md §5).

Written by hand next to the blueprints it describes; a test checks that every route of the
app appears here, so a new endpoint cannot go undocumented.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

bp = Blueprint("openapi", __name__)

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
PROBLEM = {
    "description": "RFC 9457 problem details",
    "content": {"application/problem+json": {"schema": PROBLEM_REF}},
}
XML_OR_JSON = {
    "required": True,
    "content": {
        "application/xml": {"schema": {"type": "string", "description": "a CEB message"}},
        "application/json": {
            "schema": {
                "type": "object",
                "description": "the same message as JSON, keyed by its root element",
            }
        },
    },
}
SIGNED_ENVELOPE = {
    "required": True,
    "content": {
        "application/xml": {
            "schema": {
                "type": "string",
                "description": "a DXP envelope (dxp:DxpMsg) whose Data is a signed message",
            }
        }
    },
}
RATE_LIMITED = {
    "description": "Too many requests for this API key (or address): RFC 9457 problem details",
    "headers": {
        "Retry-After": {
            "description": "seconds until the window resets",
            "schema": {"type": "integer"},
        }
    },
    "content": {"application/problem+json": {"schema": PROBLEM_REF}},
}
ID = [{"name": "declaration_id", "in": "path", "required": True, "schema": {"type": "string"}}]


def _op(
    summary: str,
    ok: str,
    *,
    body: dict[str, Any] | None = None,
    auth: bool = True,
    params: list[dict[str, Any]] | None = None,
    errors: tuple[str, ...] = ("400",),
    ok_type: str = "application/json",
    rate_limited: bool = True,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            ok: {"description": "OK", "content": {ok_type: {"schema": {}}}},
            **{code: PROBLEM for code in errors},
        },
    }
    if body:
        op["requestBody"] = body
    if params:
        op["parameters"] = params
    if not auth:
        op["security"] = []
    elif "401" not in errors:
        op["responses"]["401"] = PROBLEM
    if rate_limited:
        op["responses"]["429"] = RATE_LIMITED
    return op


def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document."""
    declaration_errors = ("400", "403", "404", "409", "413", "415", "422", "503")
    return {
        "openapi": "3.1.0",
        "info": {"title": "Single-window clearance gateway", "version": "1"},
        "servers": [{"url": "/"}],
        "security": [{"bearer": []}],
        "paths": {
            "/api/v1/declarations": {
                "post": _op(
                    "Declare a CEB message once (1..100 documents)",
                    "202",
                    body=XML_OR_JSON,
                    errors=declaration_errors,
                    params=[
                        {
                            "name": "Idempotency-Key",
                            "in": "header",
                            "required": False,
                            "schema": {"type": "string", "maxLength": 200},
                        }
                    ],
                ),
                "get": _op(
                    "List your declarations, newest first",
                    "200",
                    params=[
                        {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                        for n in ("status", "type", "limit", "cursor")
                    ],
                ),
            },
            "/api/v1/declarations/{declaration_id}": {
                "get": _op(
                    "A declaration: status, authorities, tax, timeline",
                    "200",
                    params=ID,
                    errors=("404",),
                )
            },
            "/api/v1/declarations/{declaration_id}/signed": {
                "get": _op(
                    "The exact signed XML transmitted",
                    "200",
                    params=ID,
                    errors=("404",),
                    ok_type="application/xml",
                )
            },
            "/api/v1/declarations/{declaration_id}/message": {
                "get": _op(
                    "The message as declared (XML, or JSON by Accept)",
                    "200",
                    params=ID,
                    errors=("404",),
                )
            },
            "/api/v1/declarations/{declaration_id}/cancel": {
                "post": _op(
                    "Cancel an accepted inventory list (CEB623 / CEB605)",
                    "202",
                    params=ID,
                    errors=("400", "403", "404", "409", "422"),
                    body={
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["reason"],
                                    "properties": {"reason": {"type": "string"}},
                                }
                            }
                        },
                    },
                )
            },
            "/api/v1/validate": {
                "post": _op(
                    "Validate a message or a ZIP of messages, no side effects",
                    "200",
                    body=XML_OR_JSON,
                    errors=("400", "403", "413", "415"),
                )
            },
            "/api/v1/summaries": {
                "post": _op(
                    "Declare a month's export summary applications (CEB701)",
                    "202",
                    errors=("400", "403", "409", "422"),
                    body={
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["month"],
                                    "properties": {
                                        "month": {
                                            "type": "string",
                                            "pattern": "^[0-9]{4}-[0-9]{2}$",
                                        }
                                    },
                                }
                            }
                        },
                    },
                )
            },
            "/api/v1/receipts": {
                "post": _op(
                    "An authority delivers a signed receipt",
                    "200",
                    auth=False,
                    body=SIGNED_ENVELOPE,
                )
            },
            "/api/v1/port/events": {
                "post": _op(
                    "The port's signed arrival or gate-out", "200", auth=False, body=SIGNED_ENVELOPE
                )
            },
            "/api/v1/openapi.json": {"get": _op("This document", "200", auth=False, errors=())},
            "/healthz": {
                "get": _op(
                    "Liveness: the database answers",
                    "200",
                    auth=False,
                    errors=("503",),
                    rate_limited=False,
                )
            },
            "/readyz": {
                "get": _op(
                    "Readiness: database and Redis answer",
                    "200",
                    auth=False,
                    errors=("503",),
                    rate_limited=False,
                )
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status"],
                    "properties": {
                        "type": {"type": "string"},
                        "title": {"type": "string"},
                        "status": {"type": "integer"},
                        "detail": {"type": "string"},
                        "errors": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "properties": {
                                    "path": {"type": "string"},
                                    "line": {"type": ["integer", "null"]},
                                    "code": {"type": "string"},
                                    "message": {"type": "string"},
                                    "message_zh": {"type": "string"},
                                    "value": {"type": "string"},
                                },
                            },
                        },
                    },
                }
            },
        },
    }


@bp.get("/api/v1/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 document of this API."""
    return jsonify(document())
