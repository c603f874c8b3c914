"""/api/v1/receipts: authorities deliver signed receipts here (idempotent)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from gateway.services.port_events import record_port_events
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


port_bp = Blueprint("port_events", __name__, url_prefix="/api/v1/port/events")


@port_bp.post("")
def port_events() -> Response:
    """The port's arrival and gate-out events (signed, in a DXP envelope); idempotent."""
    rt = current_app.extensions["gateway.runtime"]()
    outcome = record_port_events(rt, request.get_data(cache=False))
    return jsonify(
        {
            "applied": outcome.applied,
            "duplicates": outcome.duplicates,
            "unmatched": outcome.unmatched,
        }
    )
