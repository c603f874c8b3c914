"""GET /api/v1/openapi.json: the served description of the public API (DESIGN.md §5).

Written by hand next to the blueprints it describes; a test checks that every route of the
app appears here, so a new endpoint cannot go undocumented.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify

from gateway.api import openapi_schemas as shapes

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


def _query(name: str, description: str, **schema: Any) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string", **schema},
    }


LIST_FILTERS = [
    _query("status", "one or more statuses, comma-separated"),
    _query("type", "a message type", pattern="^CEB[0-9]{3}$"),
    _query("authority_status", "a receipt code any authority has now, e.g. 100, 800"),
    _query("since", "created at or after: YYYY-MM-DD (China time) or ISO 8601"),
    _query("until", "created before (a date: up to the end of that day, China time)"),
    _query("code", "a registered code in the declaration (ebpCode, agentCode ...)"),
    _query("q", "part of orderNo, logisticsNo, invtNo, preNo or copNo", maxLength=60),
    {
        "name": "limit",
        "in": "query",
        "required": False,
        "schema": {"type": "integer", "minimum": 1, "maximum": 200},
    },
    _query("cursor", "next_cursor of the previous page"),
]
READINESS = {
    "description": "each part's state (503: the parts in `failed` are not ready)",
    "content": {"application/json": {"schema": {"type": "object", "required": ["status"]}}},
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


BATCH_ID = [{"name": "batch_id", "in": "path", "required": True, "schema": {"type": "string"}}]
TEMPLATE_NAME = [{"name": "name", "in": "path", "required": True, "schema": {"type": "string"}}]
WAIT = {
    "name": "wait",
    "in": "query",
    "required": False,
    "schema": {"type": "number", "minimum": 0, "maximum": 60},
    "description": "hold the answer up to this many seconds, until the batch is done",
}
BATCH_UPLOAD = {
    "required": True,
    "content": {
        "application/zip": {
            "schema": {"type": "string", "format": "binary", "description": "XML/JSON messages"}
        },
        "text/csv": {
            "schema": {"type": "string", "description": "UTF-8 (BOM or not) or GBK/GB18030"}
        },
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
            "schema": {"type": "string", "format": "binary"}
        },
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "properties": {"file": {"type": "string", "format": "binary"}},
            }
        },
    },
}


# The signed endpoints: a refused message (400), and with mutual TLS no client certificate
# (401) or another's (403): gateway/api/mtls.py.
SIGNED_ERRORS = ("400", "401", "403")


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
    ok_schema: dict[str, Any] | None = None,
) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": summary,
        "responses": {
            ok: {"description": "OK", "content": {ok_type: {"schema": ok_schema or {}}}},
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
    from gateway.api.openapi_webhooks import paths as webhook_paths

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
                    ok_schema=shapes.ACCEPTED,
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
                    "List your declarations, newest first, filtered",
                    "200",
                    params=LIST_FILTERS,
                    ok_schema=shapes.PAGE,
                    errors=("422",),
                ),
            },
            "/api/v1/declarations/counts": {
                "get": _op(
                    "How many of your declarations have each status (same filters)",
                    "200",
                    ok_schema=shapes.COUNTS,
                    params=[
                        p for p in LIST_FILTERS if p["name"] not in ("status", "limit", "cursor")
                    ],
                    errors=("422",),
                )
            },
            "/api/v1/trace": {
                "get": _op(
                    "The whole chain of a parcel from any of its numbers",
                    "200",
                    ok_schema=shapes.TRACE,
                    params=[
                        {
                            "name": "q",
                            "in": "query",
                            "required": True,
                            "description": "orderNo, logisticsNo, invtNo, preNo, copNo, "
                            "payTransactionId or barCode",
                            "schema": {"type": "string", "minLength": 1, "maxLength": 60},
                        }
                    ],
                    errors=("404", "422"),
                )
            },
            "/api/v1/declarations/{declaration_id}": {
                "get": _op(
                    "A declaration: status, authorities, tax, timeline",
                    "200",
                    ok_schema=shapes.DECLARATION,
                    params=ID,
                    errors=("404",),
                )
            },
            "/api/v1/declarations/{declaration_id}/signed": {
                "get": _op(
                    "The exact signed XML transmitted (declarant and its broker only: 403 for "
                    "other parties, as it carries personal data and cannot be masked)",
                    "200",
                    params=ID,
                    errors=("403", "404"),
                    ok_type="application/xml",
                )
            },
            "/api/v1/declarations/{declaration_id}/message": {
                "get": _op(
                    "The message as declared (XML, or JSON by Accept); personal data masked "
                    "unless you are the declarant or its broker (header X-Personal-Data: "
                    "whole | masked)",
                    "200",
                    params=ID,
                    errors=("404",),
                )
            },
            "/api/v1/declarations/{declaration_id}/cancel": {
                "post": _op(
                    "Cancel an accepted inventory list (CEB623 / CEB605)",
                    "202",
                    ok_schema=shapes.ACCEPTED,
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
                    ok_schema=shapes.VALIDATION,
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
                    "An authority delivers a signed receipt (401/403: mutual TLS, when required)",
                    "200",
                    auth=False,
                    body=SIGNED_ENVELOPE,
                    errors=SIGNED_ERRORS,
                )
            },
            "/api/v1/port/events": {
                "post": _op(
                    "The port's signed arrival or gate-out (401/403: mutual TLS, when required)",
                    "200",
                    auth=False,
                    body=SIGNED_ENVELOPE,
                    errors=SIGNED_ERRORS,
                )
            },
            **_batch_paths(),
            "/api/v1/openapi.json": {"get": _op("This document", "200", auth=False, errors=())},
            "/healthz": {
                "get": _op(
                    "Liveness: the process answers",
                    "200",
                    auth=False,
                    errors=(),
                    rate_limited=False,
                )
            },
            "/readyz": {
                "get": _op(
                    "Readiness: database, Redis and each authority (or its planned outage); "
                    "503 names the parts that failed",
                    "200",
                    auth=False,
                    errors=(),
                )
                | {"responses": {"200": READINESS, "503": READINESS}}
            },
            **webhook_paths(),
            **_operating_paths(),
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


def _batch_paths() -> dict[str, Any]:
    """Bulk submission: the upload, its progress and per-item results, the templates."""
    query = [
        {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
        for n in ("status", "limit", "cursor")
    ]
    upload = _op(
        "Declare many at once: a ZIP of messages, or a CSV/XLSX per template "
        "(202 with progress; 200 with the results when done within ?wait)",
        "202",
        body=BATCH_UPLOAD,
        errors=("400", "403", "413", "415", "422", "503"),
        params=[
            WAIT,
            {
                "name": "template",
                "in": "query",
                "required": False,
                "schema": {"type": "string"},
                "description": "CEB311/order, CEB411/payment, CEB511/waybill, "
                "CEB621/inventory (default: the one the header row fits)",
            },
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "schema": {"type": "string", "maxLength": 200},
            },
            {
                "name": "X-Filename",
                "in": "header",
                "required": False,
                "schema": {"type": "string"},
            },
        ],
    )
    # Done within ?wait (or a replayed upload that is done): 200 with the items.
    upload["responses"]["200"] = {
        "description": "Done",
        "content": {"application/json": {"schema": {}}},
    }
    return {
        "/api/v1/declarations/batch": {"post": upload},
        "/api/v1/batches": {
            "get": _op(
                "Your uploads, newest first, with their counts",
                "200",
                params=[
                    {"name": n, "in": "query", "required": False, "schema": {"type": "string"}}
                    for n in ("limit", "cursor")
                ],
            )
        },
        "/api/v1/batches/{batch_id}": {
            "get": _op(
                "A batch's progress and per-item results (row, column, reason)",
                "200",
                params=[*BATCH_ID, WAIT, *query],
                errors=("400", "404"),
            )
        },
        "/api/v1/templates": {
            "get": _op("The spreadsheet templates and their columns", "200", auth=False, errors=())
        },
        "/api/v1/templates/{name}.csv": {
            "get": _op(
                "A template as CSV (header and example rows)",
                "200",
                auth=False,
                params=TEMPLATE_NAME,
                errors=("404",),
                ok_type="text/csv",
            )
        },
        "/api/v1/templates/{name}.xlsx": {
            "get": _op(
                "A template as an XLSX workbook",
                "200",
                auth=False,
                params=TEMPLATE_NAME,
                errors=("404",),
                ok_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            )
        },
    }


@bp.get("/api/v1/openapi.json")
def openapi() -> Response:
    """The OpenAPI 3.1 document of this API."""
    return jsonify(document())


NOTICE_ID = [{"name": "notice_id", "in": "path", "required": True, "schema": {"type": "string"}}]
OUTAGE_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["authority", "start", "end"],
                "properties": {
                    "authority": {"enum": ["customs", "inspection", "port"]},
                    "start": {"type": "string", "format": "date-time"},
                    "end": {"type": "string", "format": "date-time"},
                    "note": {"type": "string", "maxLength": 500},
                },
            }
        }
    },
}


def _operating_paths() -> dict[str, Any]:
    """Metrics, planned outage notices and their admin API."""
    metrics = _op(
        "Prometheus metrics (text exposition)", "200", auth=False, errors=(), rate_limited=False
    )
    metrics["responses"]["200"]["content"] = {"text/plain": {"schema": {"type": "string"}}}
    return {
        "/metrics": {"get": metrics},
        "/api/v1/notices": {
            "get": _op("Upcoming and active planned outages of the authorities", "200", errors=())
        },
        "/api/v1/admin/outages": {
            "get": _op("Every planned outage notice (admin)", "200", errors=("403",)),
            "post": _op(
                "Announce a planned outage of an authority (admin)",
                "201",
                body=OUTAGE_BODY,
                errors=("400", "403"),
            ),
        },
        "/api/v1/admin/outages/{notice_id}": {
            "delete": _op(
                "Cancel a notice; what it held goes out now (admin)",
                "200",
                params=NOTICE_ID,
                errors=("403", "404"),
            )
        },
    }
