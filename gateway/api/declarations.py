"""/api/v1/declarations: submit a CEB message, read status and timeline, fetch signed XML."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from gateway.api.auth import current_principal
from gateway.api.filters import list_query
from gateway.api.notices import notices_json, submission_notices, warn
from gateway.api.tenancy import redacting
from gateway.domain.access import Capability
from gateway.domain.errors import MalformedRequest, NotFound, PermissionDenied, Violation
from gateway.domain.statuses import DeclarationStatus, Phase
from gateway.persistence import repository as repo
from gateway.persistence.visibility import find_visible
from gateway.services.cancel import cancel
from gateway.services.declare import Accepted, declare
from gateway.services.disclosure import may_read_signed, view_message
from gateway.services.runtime import Runtime
from gateway.services.summary import declare_month
from gateway.xml.json_codec import xml_to_json
from schemas.registry import get_spec

bp = Blueprint("declarations", __name__, url_prefix="/api/v1/declarations")


def _rt() -> Runtime:
    return current_app.extensions["gateway.runtime"]()  # type: ignore[no-any-return]


def _iso(value: Any) -> str | None:
    value = repo.as_utc(value)
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _links(declaration_id: str) -> dict[str, str]:
    return {
        "self": url_for("declarations.get_one", declaration_id=declaration_id),
        "signed": url_for("declarations.signed", declaration_id=declaration_id),
        "message": url_for("declarations.message", declaration_id=declaration_id),
        "cancel": url_for("declarations.cancel_one", declaration_id=declaration_id),
    }


def _accepted_body(acc: Accepted) -> dict[str, Any]:
    first = acc.declarations[0]
    return {
        "id": first.id,
        "type": acc.message_type,
        "status": first.status,
        "links": _links(first.id),
        "message": {"id": acc.message_id, "guid": acc.guid, "documents": len(acc.declarations)},
        "replayed": acc.replayed,
        "declarations": [
            {
                "id": d.id,
                "position": d.position,
                "guid": d.doc_guid,
                "status": d.status,
                "links": _links(d.id),
            }
            for d in acc.declarations
        ],
    }


@bp.post("")
def submit() -> tuple[Response, int]:
    """Declare once: validate, sign, store and queue a CEB message; 202 when accepted."""
    principal = current_principal(_rt(), Capability.DECLARE)
    key = request.headers.get("Idempotency-Key") or None
    if key is not None and len(key) > 200:
        raise MalformedRequest("Idempotency-Key is longer than 200 characters.")
    with redacting(_rt().engine, principal.viewer):
        acc = declare(
            _rt(),
            principal.org_id,
            request.get_data(cache=False),
            request.content_type or "",
            key,
            actor=principal.actor,
        )
    body = _accepted_body(acc)
    notices = submission_notices(acc.message_id)  # planned outages ahead: say so
    body["notices"] = notices_json(notices)
    resp = jsonify(body)
    warn(resp, notices)
    resp.headers["Location"] = _links(acc.declarations[0].id)["self"]
    return resp, 200 if acc.replayed else 202


def _owned(declaration_id: str, *, whole_message: bool = False) -> Any:
    """The declaration if the caller sees it; a foreign one is answered as a missing one."""
    principal = current_principal(_rt(), Capability.READ)
    with _rt().engine.connect() as conn:
        decl = find_visible(conn, principal.viewer, declaration_id, whole_message=whole_message)
    if decl is None:
        raise NotFound(f"No declaration {declaration_id} is visible to you.")
    return decl


def _summary(decl: Any) -> dict[str, Any]:
    return {
        "id": decl["id"],
        "type": decl["type"],
        "status": decl["status"],
        "guid": decl["doc_guid"],
        "position": decl["position"],
        "message_id": decl["message_id"],
        "order_no": decl["order_no"],
        "logistics_no": decl["logistics_no"],
        "cop_no": decl["cop_no"],
        "pre_no": decl["pre_no"],
        "invt_no": decl["invt_no"],
        "created_at": _iso(decl["created_at"]),
        "updated_at": _iso(decl["updated_at"]),
        "links": _links(decl["id"]),
    }


@bp.get("/<declaration_id>")
def get_one(declaration_id: str) -> Response:
    """One declaration: status, each authority's status, and the timeline of events."""
    decl = _owned(declaration_id)
    with _rt().engine.connect() as conn:
        authorities = repo.authority_rows(conn, declaration_id)
        events = repo.events_of(conn, declaration_id)
    body = _summary(decl)
    body["routes"] = decl["routes"]
    body["tax"] = decl["tax"]  # the gateway's estimate and, once issued, customs' bill
    body["authorities"] = {
        a["authority"]: {
            "status": a["code"],
            "phase": Phase(a["phase"]).name.lower(),
            "info": a["info"],
            "updated_at": _iso(a["updated_at"]),
        }
        for a in authorities
    }
    body["events"] = [
        {
            "at": _iso(e["at"]),
            "kind": e["kind"],
            "source": e["source"],
            "status": e["status"],
            "code": e["code"],
            "info": e["info"],
            "data": e["data"],
        }
        for e in events
    ]
    return jsonify(body)


@bp.get("/<declaration_id>/signed")
def signed(declaration_id: str) -> Response:
    """The exact signed XML that was (or will be) transmitted for this declaration; only
    for those who may read its personal data whole (it cannot be masked)."""
    decl = _owned(declaration_id, whole_message=True)
    principal = current_principal(_rt())
    with _rt().engine.connect() as conn:
        msg = repo.get_message(conn, decl["message_id"])
    assert msg is not None
    if not may_read_signed(msg, principal.org_id, principal.codes):
        raise PermissionDenied(
            "The signed message carries personal data and cannot be masked: only the "
            "declarant and its broker may read it; use /message for the masked view."
        )
    return Response(msg["signed_xml"], mimetype="application/xml")


@bp.post("/<declaration_id>/cancel")
def cancel_one(declaration_id: str) -> tuple[Response, int]:
    """Cancel an accepted inventory list (CEB623 / CEB605): 202 with the cancellation."""
    principal = current_principal(_rt(), Capability.CANCEL)
    payload = request.get_json(silent=True) if request.data else {}
    if not isinstance(payload, dict) or not isinstance(payload.get("reason", ""), str):
        raise MalformedRequest(
            'Send JSON {"reason": "..."}.',
            violations=[Violation("/reason", "cancel.reason", "a reason string is required")],
        )
    with redacting(_rt().engine, principal.viewer):
        acc = cancel(
            _rt(),
            principal.org_id,
            declaration_id,
            payload.get("reason", ""),
            principal.viewer,
            actor=principal.actor,
        )
    resp = jsonify(_accepted_body(acc))
    resp.headers["Location"] = _links(acc.declarations[0].id)["self"]
    return resp, 202


@bp.get("/<declaration_id>/message")
def message(declaration_id: str) -> Response:
    """The declared message as accepted (before signing): XML, or JSON when Accept asks;
    personal data masked unless the caller is the declarant or its broker."""
    decl = _owned(declaration_id, whole_message=True)
    principal = current_principal(_rt())
    with _rt().engine.connect() as conn:
        msg = repo.get_message(conn, decl["message_id"])
    assert msg is not None
    view = view_message(msg, principal.org_id, principal.codes, _rt().limits)
    wants = request.accept_mimetypes.best_match(["application/xml", "application/json"])
    if wants != "application/json":
        resp = Response(view.xml, mimetype="application/xml")
    else:
        resp = jsonify(xml_to_json(view.root(), get_spec(msg["type"])))
    resp.headers["X-Personal-Data"] = "whole" if view.whole else "masked"
    return resp


@bp.get("")
def list_all() -> Response:
    """Declarations the caller sees (DESIGN.md §5), newest first, filtered, cursor-paginated."""
    principal = current_principal(_rt(), Capability.READ)
    query = list_query(request.args)
    with _rt().engine.connect() as conn:
        rows = repo.list_declarations(
            conn, principal.viewer, before=query.cursor, limit=query.limit + 1, where=query.where
        )
    items = [_summary(r) for r in rows[: query.limit]]
    next_cursor = rows[query.limit - 1]["id"] if len(rows) > query.limit else None
    return jsonify({"items": items, "next_cursor": next_cursor})


@bp.get("/counts")
def counts() -> Response:
    """How many of the caller's declarations have each status, under the same filters."""
    principal = current_principal(_rt(), Capability.READ)
    query = list_query(request.args)
    with _rt().engine.connect() as conn:
        found = repo.count_by_status(conn, principal.viewer, query.where)
    by_status = {s.value: found.get(s.value, 0) for s in DeclarationStatus}
    return jsonify({"total": sum(by_status.values()), "by_status": by_status})


summaries = Blueprint("summaries", __name__, url_prefix="/api/v1/summaries")


@summaries.post("")
def summarise() -> tuple[Response, int]:
    """Declare the export summary applications (CEB701) of a month: {"month": "YYYY-MM"}."""
    principal = current_principal(_rt(), Capability.SUMMARISE)
    payload = request.get_json(silent=True)
    month = payload.get("month") if isinstance(payload, dict) else None
    if not isinstance(month, str):
        raise MalformedRequest(
            'Send JSON {"month": "YYYY-MM"}.',
            violations=[Violation("/month", "summary.month", "a month like 2026-11 is required")],
        )
    with _rt().engine.connect() as conn:
        dxp_id = repo.org_dxp_id(conn, principal.org_id)
    transfer = {
        "copCode": (principal.codes or ["0000000000"])[0],
        "copName": principal.org_name,
        "dxpMode": "DXP",
        "dxpId": dxp_id,
    }
    with redacting(_rt().engine, principal.viewer):
        accepted = declare_month(
            _rt(), principal.org_id, month, transfer, principal.viewer, actor=principal.actor
        )
    return jsonify({"month": month, "messages": [_accepted_body(a) for a in accepted]}), 202
