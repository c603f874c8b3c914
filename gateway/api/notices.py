"""Planned outage notices: what users see (GET /api/v1/notices, and a ``notices`` field and
``Warning`` header on a submission's answer), and the operators' admin API."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Blueprint, Response, current_app, jsonify, request

from gateway.api.auth import current_principal
from gateway.domain.errors import MalformedRequest, PermissionDenied
from gateway.domain.outages import OutageNotice
from gateway.persistence import outages as store
from gateway.persistence import repository as repo
from gateway.services import outages
from gateway.services.runtime import Runtime

bp = Blueprint("notices", __name__)


def _rt() -> Runtime:
    return current_app.extensions["gateway.runtime"]()  # type: ignore[no-any-return]


def _board() -> outages.NoticeBoard:
    board = current_app.extensions.get("gateway.notices")
    if board is None:
        settings = current_app.config["GATEWAY_SETTINGS"]
        runtime = current_app.extensions["gateway.runtime"]
        board = outages.NoticeBoard(lambda: runtime().engine, settings.notice_cache_seconds)
        current_app.extensions["gateway.notices"] = board
    return board  # type: ignore[no-any-return]


@bp.get("/api/v1/notices")
def list_notices() -> Response:
    """Upcoming and active planned outages of the authorities, soonest first."""
    current_principal(_rt())
    at = repo.now()
    return jsonify({"notices": [outages.as_json(n, at) for n in _board().current()]})


def submission_notices(message_id: str) -> list[OutageNotice]:
    """The notices a submission's answer carries: active or starting within the lead time,
    for the authorities its message goes to. Costs nothing when there are none."""
    notices = _board().current()
    if not notices:
        return []
    lead = timedelta(hours=current_app.config["GATEWAY_SETTINGS"].notice_lead_hours)
    horizon = repo.now() + lead
    soon = [n for n in notices if n.starts_at <= horizon]
    if not soon:
        return []
    with _rt().engine.connect() as conn:
        routed = store.authorities_of_message(conn, message_id)
    return [n for n in soon if n.authority in routed]


def notices_json(notices: list[OutageNotice]) -> list[dict[str, Any]]:
    at = repo.now()
    return [outages.as_json(n, at) for n in notices]


def warn(resp: Response, notices: list[OutageNotice]) -> None:
    """One RFC 7234 style ``Warning`` header per notice (Latin-1: the note stays in the body)."""
    for n in notices:
        resp.headers.add("Warning", f'199 gateway "{n.headline()}"')


# --- admin -------------------------------------------------------------------------------


def _admin() -> str:
    principal = current_principal(_rt())
    if principal.role != "admin":
        raise PermissionDenied("Announcing outages needs an admin API key.")
    return f"api:{principal.org_name}"


def _when(body: dict[str, Any], name: str) -> datetime:
    value = body.get(name)
    if not isinstance(value, str):
        raise MalformedRequest(f"{name} must be an ISO 8601 date-time with a time zone.")
    return parse_time(value, name)


def parse_time(value: str, name: str) -> datetime:
    """An ISO 8601 date-time with a zone ('Z' allowed), as UTC; MalformedRequest if not."""
    try:
        at = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise MalformedRequest(f"{name} is not an ISO 8601 date-time: {value!r}.") from None
    if at.tzinfo is None:
        raise MalformedRequest(f"{name} needs a time zone, e.g. {value}Z or {value}+08:00.")
    try:
        return at.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 shifted out of range
        raise MalformedRequest(f"{name} is out of range: {value!r}.") from None


@bp.post("/api/v1/admin/outages")
def announce() -> tuple[Response, int]:
    """Announce a planned outage of an authority (admin)."""
    by = _admin()
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise MalformedRequest('Send JSON: {"authority", "start", "end", "note"}.')
    note = body.get("note", "")
    if not isinstance(note, str) or not isinstance(body.get("authority"), str):
        raise MalformedRequest("authority and note must be strings.")
    notice = outages.announce(
        _rt().engine, body["authority"], _when(body, "start"), _when(body, "end"), note, by
    )
    current_app.extensions.pop("gateway.notices", None)  # this process sees it at once
    return jsonify(outages.as_json(notice, repo.now())), 201


@bp.get("/api/v1/admin/outages")
def list_all() -> Response:
    """Every notice, cancelled and ended ones included (admin)."""
    _admin()
    with _rt().engine.connect() as conn:
        rows = store.all_notices(conn)
    return jsonify({"outages": [_row_json(r) for r in rows]})


@bp.delete("/api/v1/admin/outages/<notice_id>")
def cancel(notice_id: str) -> Response:
    """Cancel a notice; what it was holding goes out now (admin)."""
    _admin()
    released = outages.cancel(_rt().engine, notice_id)
    current_app.extensions.pop("gateway.notices", None)
    return jsonify({"id": notice_id, "cancelled": True, "released_dispatches": released})


def _row_json(row: Any) -> dict[str, Any]:
    notice = store.notice_of(row)
    out = outages.as_json(notice, repo.now())
    cancelled = repo.as_utc(row["cancelled_at"])
    out["cancelled_at"] = cancelled.isoformat().replace("+00:00", "Z") if cancelled else None
    out["created_by"] = row["created_by"]
    if cancelled:
        out["state"] = "cancelled"
    return out
