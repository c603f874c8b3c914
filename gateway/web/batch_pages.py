"""Bulk uploads in the dashboard: a ZIP, CSV or XLSX goes through the same batch service as
``POST /api/v1/declarations/batch``; its page follows the progress (htmx polls until it is
done) and lists each row's or file's result; the organisation's recent batches beside it."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, redirect, render_template, request, url_for
from werkzeug.wrappers import Response

from gateway.api.auth import Principal
from gateway.domain.access import Capability
from gateway.domain.errors import GatewayError, MalformedRequest, NotFound
from gateway.domain.reasons_zh import zh_reason
from gateway.jobs.batch import batch_limits, ring
from gateway.persistence import batches as store
from gateway.services.batch import submit_batch
from gateway.services.templates import all_templates
from gateway.settings import Settings
from gateway.web.blueprint import bp

MAX_ITEMS_SHOWN = 500
RECENT = 20


def _rt() -> Any:
    return current_app.extensions["gateway.runtime"]()


def _settings() -> Settings:
    return current_app.config["GATEWAY_SETTINGS"]  # type: ignore[no-any-return]


def _recent(org_id: str) -> list[Any]:
    with _rt().engine.connect() as conn:
        return store.list_batches(conn, org_id, before=None, limit=RECENT)


def _list_page(status: int = 200, problem: GatewayError | None = None) -> tuple[str, int]:
    return render_template(
        "batches.html",
        batches=_recent(g.principal.org_id),
        templates=[(t.type, t.alias) for t in all_templates()],
        problem=problem,
        zh=zh_reason,
    ), status


@bp.get("/batches")
def batches() -> tuple[str, int]:
    """Upload a batch, and the organisation's recent batches with their counts."""
    return _list_page()


@bp.post("/batches")
def submit() -> Response | tuple[str, int]:
    """Store the upload as a batch, ring its workers, and go to its page."""
    p: Principal = g.principal
    settings = _settings()
    request.max_content_length = settings.batch_max_bytes
    file = request.files.get("file")
    data = file.read() if file is not None else b""
    name = (file.filename if file is not None else "") or ""
    template = request.form.get("template") or None
    try:
        p.require(Capability.DECLARE)
        if not data:
            raise MalformedRequest("Choose a file first. 请先选择文件。")
        accepted = submit_batch(
            _rt(),
            p.org_id,
            data,
            (file.mimetype if file is not None else "") or "",
            name,
            template,
            batch_limits(settings),
            settings.doorbell_grace,
        )
    except GatewayError as exc:
        return _list_page(exc.status, exc)
    ring(settings, accepted.id, accepted.chunks)
    return redirect(url_for("web.batch", batch_id=accepted.id))


def _errors(item: Any) -> list[dict[str, Any]]:
    """Each problem of an item as row, column, code and message (Chinese and English)."""
    out = []
    for e in item["errors"] or []:
        rows = item["rows"] or []
        code = str(e.get("code", ""))
        out.append(
            {
                "row": e.get("row") or (", ".join(map(str, rows)) if rows else ""),
                "column": e.get("column") or e.get("path") or "",
                "code": code,
                "message": e.get("message", ""),
                "message_zh": e.get("message_zh") or zh_reason(code, e.get("column")),
                "value": e.get("value"),
                "line": e.get("line"),
            }
        )
    if not out and item["status"] == "rejected":
        out.append(
            {"row": "", "column": "", "code": str(item["http_status"] or ""),
             "message": f"{item['title']}: {item['detail']}", "message_zh": ""}
        )  # fmt: skip
    return out


@bp.get("/batches/<batch_id>")
def batch(batch_id: str) -> str:
    """A batch's progress and every item's result; an htmx poll gets the fragment alone."""
    only = request.args.get("status") if request.args.get("status") in ("rejected",) else None
    with _rt().engine.connect() as conn:
        b = store.get_batch(conn, batch_id)
        if b is None or b["org_id"] != g.principal.org_id:
            raise NotFound(f"No batch {batch_id} is visible to you.")
        items = store.items_of(conn, batch_id, after=0, limit=MAX_ITEMS_SHOWN + 1, status=only)
    done = b["status"] not in store.UNFINISHED
    template = "_batch.html" if request.headers.get("HX-Request") else "batch.html"
    return render_template(
        template,
        b=b,
        done=done,
        only=only,
        items=items[:MAX_ITEMS_SHOWN],
        more=len(items) > MAX_ITEMS_SHOWN,
        errors={i["position"]: _errors(i) for i in items[:MAX_ITEMS_SHOWN]},
        percent=int(100 * b["processed"] / b["total"]) if b["total"] else 100,
        batches=_recent(g.principal.org_id),  # in the polled fragment: their counts move too
    )
