"""The brokers' and sellers' dashboard (/dashboard/): server-rendered pages over the same
services as the API, htmx (vendored in static/) polling fragments for live status."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flask import Flask, g, redirect, render_template, request, url_for
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from gateway.domain.errors import GatewayError
from gateway.domain.masking import mask_text
from gateway.persistence import repository as repo
from gateway.services.monitoring import CHINA
from gateway.settings import Settings
from gateway.web import batch_pages, keys, login, pages, tools  # noqa: F401  (routes join bp)
from gateway.web.blueprint import bp

OPEN_ENDPOINTS = frozenset({"web.login", "web.static"})


@bp.before_request
def guard() -> Response | None:
    """Every POST carries this session's CSRF token; every page but login needs a sign-in."""
    login.check_csrf()
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    g.principal = login.web_principal()
    if g.principal is None:
        if request.headers.get("HX-Request"):  # a poll after the session ended: full reload
            return Response(status=204, headers={"HX-Redirect": url_for("web.login")})
        return redirect(url_for("web.login", next=request.full_path.rstrip("?")))
    return None


@bp.after_request
def no_store(resp: Response) -> Response:
    """Pages hold a broker's data: never cached, never framed."""
    resp.headers.setdefault("Cache-Control", "no-store")
    resp.headers.setdefault("X-Frame-Options", "DENY")
    resp.headers.setdefault("X-Content-Type-Options", "nosniff")
    return resp


@bp.errorhandler(GatewayError)
def gateway_error(exc: GatewayError) -> tuple[str, int]:
    """Problems as a page (the API keeps its problem+json)."""
    return render_template("error.html", title=exc.title, detail=exc.detail), exc.status


@bp.errorhandler(HTTPException)
def http_error(exc: HTTPException) -> tuple[str, int]:
    return render_template(
        "error.html", title=exc.name, detail=exc.description or ""
    ), exc.code or 500


def china_time(value: Any, fmt: str = "%Y-%m-%d %H:%M:%S") -> str:
    """A stored UTC time as China time, as brokers and customs read it."""
    moment = repo.as_utc(value) if isinstance(value, datetime) else None
    if moment is None and isinstance(value, str) and value:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment.astimezone(CHINA).strftime(fmt) if moment is not None else ""


@bp.app_context_processor
def helpers() -> dict[str, Any]:
    principal = g.get("principal")
    return {
        "csrf_token": login.csrf_token,
        "principal": principal,
        "signed_in_as": login.signed_in_as(),
        "outage_notices": _outage_notices() if principal is not None else [],
    }


def _outage_notices() -> list[Any]:
    """Planned outages ahead or under way, so brokers see them before they submit (the
    board is cached per process: no query per page)."""
    from gateway.api.notices import _board

    at = repo.now()
    return [
        {"notice": n, "active": n.covers(at)}
        for n in sorted(_board().current(), key=lambda n: n.starts_at)
    ]


def init_app(app: Flask, settings: Settings) -> None:
    """Register the dashboard on the app."""
    login.configure(app, settings)
    app.add_template_filter(china_time, "cst")
    app.add_template_filter(lambda v: mask_text(v or ""), "masktext")
    app.register_blueprint(bp)
