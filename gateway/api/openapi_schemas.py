"""The shapes of the main JSON answers, for the OpenAPI document (schemathesis checks every
answer against them, so a field dropped or renamed in a view fails the suite)."""

from __future__ import annotations

from typing import Any

_STR = {"type": "string"}
_NSTR = {"type": ["string", "null"]}
_LINKS = {"type": "object", "additionalProperties": _STR}
_STATUS = {
    "type": "string",
    "enum": [
        "accepted",
        "submitted",
        "under_review",
        "inspection",
        "released",
        "closed",
        "rejected",
        "held",
        "cancelled",
        "returned",
    ],
}

SUMMARY: dict[str, Any] = {
    "type": "object",
    "required": ["id", "type", "status", "guid", "position", "message_id", "links"],
    "properties": {
        "id": _STR,
        "type": _STR,
        "status": _STATUS,
        "guid": _STR,
        "position": {"type": "integer"},
        "message_id": _STR,
        "order_no": _NSTR,
        "logistics_no": _NSTR,
        "cop_no": _NSTR,
        "pre_no": _NSTR,
        "invt_no": _NSTR,
        "created_at": _NSTR,
        "updated_at": _NSTR,
        "links": _LINKS,
    },
}

EVENT = {
    "type": "object",
    "required": ["at", "kind", "source", "status"],
    "properties": {
        "at": _NSTR,
        "kind": _STR,
        "source": _STR,
        "status": _STR,
        "code": _NSTR,
        "info": _NSTR,
    },
}

DECLARATION: dict[str, Any] = {
    **SUMMARY,
    "required": [*SUMMARY["required"], "routes", "authorities", "events"],
    "properties": {
        **SUMMARY["properties"],
        "routes": {"type": "array", "items": _STR},
        "tax": {"type": ["object", "null"]},
        "authorities": {
            "type": "object",
            "additionalProperties": {
                "type": "object",
                "required": ["status", "phase"],
                "properties": {"status": _NSTR, "phase": _STR, "info": _NSTR},
            },
        },
        "events": {"type": "array", "items": EVENT},
    },
}

PAGE = {
    "type": "object",
    "required": ["items", "next_cursor"],
    "properties": {"items": {"type": "array", "items": SUMMARY}, "next_cursor": _NSTR},
}

COUNTS = {
    "type": "object",
    "required": ["total", "by_status"],
    "properties": {
        "total": {"type": "integer", "minimum": 0},
        "by_status": {"type": "object", "additionalProperties": {"type": "integer"}},
    },
}

ACCEPTED = {
    "type": "object",
    "required": ["id", "type", "status", "links", "message", "replayed", "declarations"],
    "properties": {
        "id": _STR,
        "type": _STR,
        "status": _STATUS,
        "links": _LINKS,
        "message": {
            "type": "object",
            "required": ["id", "guid", "documents"],
            "properties": {"id": _STR, "guid": _STR, "documents": {"type": "integer"}},
        },
        "replayed": {"type": "boolean"},
        "declarations": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["id", "position", "guid", "status", "links"],
            },
        },
    },
}

VALIDATION = {
    "type": "object",
    "required": ["valid", "files"],
    "properties": {
        "valid": {"type": "boolean"},
        "files": {
            "type": "array",
            "items": {"type": "object", "required": ["file", "valid"]},
        },
    },
}

TRACE = {
    "type": "object",
    "required": ["declarations", "events"],
    "properties": {
        "declarations": {"type": "array", "items": {"type": "object"}},
        "events": {"type": "array", "items": {"type": "object"}},
    },
}
