"""Bulk submission: POST /api/v1/declarations/batch, GET /api/v1/batches/{id}, and the
spreadsheet templates under /api/v1/templates."""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request, url_for

from gateway.api.auth import current_principal
from gateway.domain.access import Capability
from gateway.domain.errors import MalformedRequest, NotFound, TemplateMismatch, Violation
from gateway.jobs.batch import batch_limits, ring
from gateway.persistence import batches as store
from gateway.persistence import repository as repo
from gateway.services.batch import submit_batch
from gateway.services.runtime import Runtime
from gateway.services.template_files import template_csv, template_xlsx, templates_index
from gateway.services.templates import Template, get_template
from gateway.settings import Settings

bp = Blueprint("batches", __name__)
MAX_WAIT = 60.0
ITEM_STATUSES = ("pending", "accepted", "rejected")
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def _rt() -> Runtime:
    return current_app.extensions["gateway.runtime"]()  # type: ignore[no-any-return]


def _settings() -> Settings:
    return current_app.config["GATEWAY_SETTINGS"]  # type: ignore[no-any-return]


def _iso(value: Any) -> str | None:
    value = repo.as_utc(value)
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def _number(name: str, default: float, low: float, high: float) -> float:
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not low <= value <= high:
        raise MalformedRequest(
            f"{name} must be a number from {low:g} to {high:g}.",
            violations=[Violation(f"?{name}", f"query.{name}", f"from {low:g} to {high:g}")],
        )
    return value


def _summary(b: Any) -> dict[str, Any]:
    return {
        "id": b["id"],
        "status": b["status"],
        "kind": b["kind"],
        "template": b["template"],
        "filename": b["filename"],
        "total": b["total"],
        "processed": b["processed"],
        "accepted": b["accepted"],
        "rejected": b["rejected"],
        "error": b["error"],
        "created_at": _iso(b["created_at"]),
        "finished_at": _iso(b["finished_at"]),
        "links": {"self": url_for("batches.get_batch", batch_id=b["id"])},
    }


def _item(i: Any) -> dict[str, Any]:
    ids = i["declaration_ids"] or []
    return {
        "item": i["position"],
        "name": i["name"],
        "rows": i["rows"],
        "status": i["status"],
        "http_status": i["http_status"],
        "title": i["title"],
        "detail": i["detail"],
        "declaration_id": ids[0] if ids else None,
        "declaration_ids": ids,
        "message_id": i["message_id"],
        "errors": i["errors"] or [],
    }


def _owned(batch_id: str, org_id: str) -> Any:
    with _rt().engine.connect() as conn:
        b = store.get_batch(conn, batch_id)
    if b is None or b["org_id"] != org_id:
        raise NotFound(f"No batch {batch_id} is visible to you.")
    return b


def _wait_for(batch_id: str, org_id: str, seconds: float) -> Any:
    """The batch once finished, or as it stands when ``seconds`` have passed."""
    deadline = time.monotonic() + seconds
    pause = 0.02
    while True:
        b = _owned(batch_id, org_id)
        if b["status"] not in store.UNFINISHED or time.monotonic() >= deadline:
            return b
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 1.5, 0.25)


def _with_items(b: Any) -> dict[str, Any]:
    status = request.args.get("status") or None
    if status is not None and status not in ITEM_STATUSES:
        raise MalformedRequest(
            f"Unknown item status {status!r}.",
            violations=[Violation("?status", "query.status", "one of " + ", ".join(ITEM_STATUSES))],
        )
    limit = int(_number("limit", 100, 1, 1000))
    after = int(_number("cursor", 0, 0, 10**9))
    with _rt().engine.connect() as conn:
        rows = store.items_of(conn, b["id"], after=after, limit=limit + 1, status=status)
    body = _summary(b)
    body["items"] = [_item(i) for i in rows[:limit]]
    body["next_cursor"] = str(rows[limit - 1]["position"]) if len(rows) > limit else None
    return body


@bp.post("/api/v1/declarations/batch")
def submit() -> tuple[Response, int]:
    """Accept a ZIP of messages or a CSV/XLSX per template; 202 and declare it in a job."""
    settings = _settings()
    principal = current_principal(_rt(), Capability.DECLARE)  # its items are declarations
    request.max_content_length = settings.batch_max_bytes
    wait = _number("wait", 0, 0, MAX_WAIT)
    key = request.headers.get("Idempotency-Key") or None
    if key is not None and len(key) > 200:
        raise MalformedRequest("Idempotency-Key is longer than 200 characters.")
    template = request.args.get("template") or None
    if template:
        get_template(template)  # an unknown name is refused before the body is read
    upload = request.files.get("file") if request.mimetype == "multipart/form-data" else None
    if upload is not None:
        body, media, name = upload.read(), upload.mimetype or "", upload.filename or ""
    else:
        body = request.get_data(cache=False)
        media, name = request.content_type or "", request.headers.get("X-Filename", "")
    accepted = submit_batch(
        _rt(),
        principal.org_id,
        body,
        media,
        name,
        template,
        batch_limits(settings),
        settings.doorbell_grace,
        key,
    )
    if not accepted.replayed:
        ring(settings, accepted.id, accepted.chunks)
    b = _wait_for(accepted.id, principal.org_id, wait)
    done = b["status"] not in store.UNFINISHED
    resp = jsonify((_with_items(b) if done else _summary(b)) | {"replayed": accepted.replayed})
    resp.headers["Location"] = url_for("batches.get_batch", batch_id=accepted.id)
    return resp, 200 if done else 202


@bp.get("/api/v1/batches")
def list_batches() -> Response:
    """Your organisation's uploads, newest first, with their counts (``?limit=``, ``?cursor=``)."""
    principal = current_principal(_rt())
    limit = int(_number("limit", 50, 1, 200))
    with _rt().engine.connect() as conn:
        rows = store.list_batches(
            conn, principal.org_id, before=request.args.get("cursor") or None, limit=limit + 1
        )
    return jsonify(
        {
            "items": [_summary(b) for b in rows[:limit]],
            "next_cursor": rows[limit - 1]["id"] if len(rows) > limit else None,
        }
    )


@bp.get("/api/v1/batches/<batch_id>")
def get_batch(batch_id: str) -> Response:
    """A batch's progress and its items' results (``?status=``, ``?limit=``, ``?cursor=``;
    ``?wait=`` seconds to hold the answer until it is done)."""
    principal = current_principal(_rt())
    b = _wait_for(batch_id, principal.org_id, _number("wait", 0, 0, MAX_WAIT))
    return jsonify(_with_items(b))


def _template(name: str) -> Template:
    try:
        return get_template(name)
    except TemplateMismatch as exc:
        raise NotFound(exc.detail, violations=exc.violations) from None


@bp.get("/api/v1/templates")
def list_templates() -> Response:
    """The spreadsheet templates: their columns (required or not) and download links."""
    return jsonify(
        {
            "templates": templates_index(
                lambda name, ext: url_for(f"batches.template_{ext}_file", name=name)
            )
        }
    )


@bp.get("/api/v1/templates/<name>.csv")
def template_csv_file(name: str) -> Response:
    """A template as CSV (UTF-8 with a BOM, so Excel shows Chinese): header and example."""
    t = _template(name)
    return Response(
        template_csv(t),
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{t.type}-{t.alias}.csv"'},
    )


@bp.get("/api/v1/templates/<name>.xlsx")
def template_xlsx_file(name: str) -> Response:
    """A template as an XLSX workbook (text cells, so codes keep their leading zeros)."""
    t = _template(name)
    return Response(
        template_xlsx(t),
        mimetype=XLSX,
        headers={"Content-Disposition": f'attachment; filename="{t.type}-{t.alias}.xlsx"'},
    )
