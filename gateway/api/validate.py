"""/api/v1/validate: the report a submission would get, with no side effects."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request

from gateway.api.auth import current_principal
from gateway.domain.access import Capability
from gateway.services.validate import body_format, validate_upload

bp = Blueprint("validate", __name__, url_prefix="/api/v1/validate")


@bp.post("")
def validate() -> Response:
    """Validate one CEB message (XML or JSON) or a ZIP of them; 200 with a per-file report."""
    rt = current_app.extensions["gateway.runtime"]()
    current_principal(rt, Capability.VALIDATE)
    name = request.headers.get("X-Filename") or "body"
    body = request.get_data(cache=False)
    fmt = None if body.startswith(b"PK\x03\x04") else body_format(request.content_type or "")
    reports = validate_upload(name, body, rt.limits, fmt)
    return jsonify(
        {
            "valid": all(r.valid for r in reports),
            "files": [r.as_dict() for r in reports],
        }
    )
