"""Upload a message (validate or declare it), trace a number, and the daily monitoring
chart: the dashboard's tools over the same services as the API."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, render_template, request

from gateway.domain.access import Capability
from gateway.domain.errors import GatewayError
from gateway.services.declare import declare
from gateway.services.monitoring import daily
from gateway.services.templates import all_templates
from gateway.services.trace import trace
from gateway.services.validate import validate_upload
from gateway.web.blueprint import bp
from gateway.web.charts import volume_chart

BATCH_PATH = "/api/v1/declarations/batch"
MAX_Q = 60


def _rt() -> Any:
    return current_app.extensions["gateway.runtime"]()


def _batch_available() -> bool:
    return any(rule.rule == BATCH_PATH for rule in current_app.url_map.iter_rules())


def _content_type(name: str, data: bytes) -> str:
    if name.lower().endswith(".json") or data.lstrip()[:1] in (b"{", b"["):
        return "application/json"
    return "application/xml"


@bp.route("/upload", methods=["GET", "POST"])
def upload() -> tuple[str, int]:
    """Check a file (a message or a ZIP of them) or declare one message, and show the answer."""
    result: dict[str, Any] | None = None
    status = 200
    if request.method == "POST":
        file = request.files.get("file")
        mode = request.form.get("mode", "validate")
        data = file.read() if file is not None else b""
        name = (file.filename if file is not None else "") or "upload"
        if not data:
            result, status = {"mode": mode, "error": "Choose a file first. 请先选择文件。"}, 400
        elif mode == "declare":
            try:
                p = g.principal.require(Capability.DECLARE)  # as the API: a port may not
                acc = declare(_rt(), p.org_id, data, _content_type(name, data), actor=p.actor)
                result = {"mode": mode, "name": name, "accepted": acc}
            except GatewayError as exc:
                result, status = {"mode": mode, "name": name, "problem": exc}, exc.status
        else:
            try:
                reports = validate_upload(name, data, _rt().limits)
                result = {"mode": mode, "name": name, "reports": reports}
            except GatewayError as exc:
                result, status = {"mode": mode, "name": name, "problem": exc}, exc.status
    return render_template(
        "upload.html",
        result=result,
        batch=BATCH_PATH if _batch_available() else None,
        templates=[(t.type, t.alias) for t in all_templates()],
    ), status


@bp.get("/monitor")
def monitor() -> str:
    """Import/export dynamic monitoring: volumes and clearance times per day."""
    try:
        days = max(7, min(60, int(request.args.get("days", "14"))))
    except ValueError:
        days = 14
    series = daily(_rt(), g.principal.viewer, days)
    return render_template("monitor.html", days=series, span=days, chart=volume_chart(series))


@bp.get("/trace")
def trace_page() -> tuple[str, int]:
    """Search any number of a parcel and see its whole chain."""
    q = (request.args.get("q") or "").strip()[:MAX_Q]
    found = trace(_rt(), g.principal.viewer, q) if q else None
    status = 404 if found is not None and not found["found"] else 200
    return render_template("trace.html", q=q, t=found), status
