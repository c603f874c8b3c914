"""/api/v1/trace: from any number of a parcel to its whole chain (visible declarations only)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from gateway.api.auth import current_principal
from gateway.domain.errors import InvalidQuery, NotFound, Violation
from gateway.services.trace import trace

bp = Blueprint("trace", __name__, url_prefix="/api/v1/trace")
MAX_Q = 60


@bp.get("")
def trace_number() -> Response:
    """Trace orderNo, logisticsNo, invtNo, preNo, copNo, payTransactionId or barCode."""
    rt = current_app.extensions["gateway.runtime"]()
    principal = current_principal(rt)
    q = (request.args.get("q") or "").strip()
    if not q or len(q) > MAX_Q:
        raise InvalidQuery(
            "Send the number to trace as ?q= (1 to 60 characters).",
            violations=[Violation("?q", "query.q", "a number of 1 to 60 characters")],
        )
    body = trace(rt, principal.org_id, q)
    if not body["found"]:
        raise NotFound(f"No declaration visible to you carries the number {q!r}.")
    for d in body["declarations"]:
        d["links"] = {"self": url_for("declarations.get_one", declaration_id=d["id"])}
    return jsonify(body)
