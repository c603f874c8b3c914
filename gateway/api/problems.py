"""RFC 9457 problem details for every error, so no client ever sees an HTML page or a 500."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, jsonify, request
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from gateway.domain.errors import GatewayError, PayloadTooLarge, Violation
from gateway.persistence.database import transient

log = logging.getLogger(__name__)
PROBLEM_BASE = "urn:single-window:problem:"


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    violations: list[Violation] | None = None,
    **extra: Any,
) -> Response:
    """A problem+json response; ``errors`` always present (possibly empty)."""
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": request.path,
        "errors": [v.as_dict() for v in violations or []],
    }
    body.update(extra)
    resp = jsonify(body)
    resp.status_code = status
    resp.mimetype = "application/problem+json"
    return resp


def render_gateway_error(exc: GatewayError) -> Response:
    resp = problem(exc.status, exc.type_slug, exc.title, exc.detail, exc.violations, **exc.extra)
    if exc.status == 503:
        resp.headers["Retry-After"] = "5"
    return resp


def render_http_error(exc: HTTPException) -> Response:
    if isinstance(exc, RequestEntityTooLarge):
        return render_gateway_error(
            PayloadTooLarge(
                "The body is larger than the configured limit.",
                violations=[Violation("/", "xml.too_large", "document exceeds the size limit")],
            )
        )
    status = exc.code or 500
    slug = (exc.name or "error").lower().replace(" ", "-")
    return problem(status, slug, exc.name or "Error", exc.description or "")


def render_database_error(exc: OperationalError) -> Response:
    """A deadlock or lock timeout is the database asking for a retry: nothing was written,
    so say 503 with Retry-After (and log it as a warning, not a crash)."""
    if not transient(exc):
        return render_unexpected(exc)
    log.warning("database busy on %s %s: %s", request.method, request.path, type(exc.orig))
    resp = problem(
        503,
        "database-busy",
        "Database busy",
        "The database could not take this change right now; nothing was written. "
        "Please retry after the time in Retry-After.",
    )
    resp.headers["Retry-After"] = "1"
    return resp


def render_unexpected(exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.path)
    return problem(
        500,
        "internal",
        "Internal error",
        "The gateway failed unexpectedly; nothing was accepted. Please retry.",
    )


def init_app(app: Flask) -> None:
    """Register the handlers that turn every exception into problem details."""
    app.register_error_handler(GatewayError, render_gateway_error)
    app.register_error_handler(HTTPException, render_http_error)
    app.register_error_handler(OperationalError, render_database_error)
    app.register_error_handler(Exception, render_unexpected)
