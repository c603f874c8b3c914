"""/api/v1/receipts: authorities deliver signed receipts here (idempotent)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from gateway.services.receipts import record_receipts

bp = Blueprint("receipts", __name__, url_prefix="/api/v1/receipts")


@bp.post("")
def receive() -> Response:
    """Verify and apply a receipt in a DXP envelope; a duplicate is acknowledged again."""
    rt = current_app.extensions["gateway.runtime"]()
    outcome = record_receipts(rt, request.get_data(cache=False))
    return jsonify(
        {
            "authority": outcome.authority,
            "type": outcome.message_type,
            "applied": outcome.applied,
            "duplicates": outcome.duplicates,
            "stale": outcome.stale,
            "unmatched": outcome.unmatched,
        }
    )
