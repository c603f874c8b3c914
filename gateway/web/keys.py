"""The "API keys" page: the signed-in organisation's keys, created (the secret shown once)
and revoked here, each recorded in the audit trail as done by the session's principal."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from gateway.api.auth import Principal
from gateway.domain.errors import GatewayError, NotFound
from gateway.domain.key_grants import grantable_roles, require_grant
from gateway.persistence import accounts as acc
from gateway.services.accounts import issue_key, list_api_keys, revoke_api_key
from gateway.web.blueprint import bp

MAX_LABEL = 60


def _engine() -> Any:
    return current_app.extensions["gateway.runtime"]().engine


def _page(status: int = 200, **extra: Any) -> tuple[str, int]:
    p: Principal = g.principal
    keys = list_api_keys(_engine(), p.org_id)
    return render_template(
        "keys.html",
        keys=keys,
        roles=grantable_roles(p.role),
        manageable=set(grantable_roles(p.role)),
        revoked=request.args.get("revoked", ""),
        **extra,
    ), status


@bp.get("/keys")
def keys() -> tuple[str, int]:
    """The organisation's API keys: label, prefix, role, created, last used, revoked."""
    return _page()


@bp.post("/keys")
def create_key() -> tuple[str, int]:
    """Create a key of a role the caller may grant; its secret is shown on this page once."""
    p: Principal = g.principal
    label = request.form.get("label", "").strip()[:MAX_LABEL] or None
    role = request.form.get("role", "")
    try:
        require_grant(p.role, role)
        issued = issue_key(_engine(), p.org_id, role, label, actor=p.actor)
    except GatewayError as exc:
        return _page(exc.status, problem=exc, label=label or "")
    return _page(201, issued=issued)


@bp.post("/keys/<key_id>/revoke")
def revoke_key(key_id: str) -> Response | tuple[str, int]:
    """Revoke one of the organisation's keys; revoking this session's own key signs it out."""
    p: Principal = g.principal
    with _engine().connect() as conn:
        key = acc.get_key(conn, key_id)
    if key is None or key["org_id"] != p.org_id:
        raise NotFound(f"No API key {key_id} is visible to you.")
    try:
        require_grant(p.role, key["role"])
        revoke_api_key(_engine(), key_id, actor=p.actor, org_id=p.org_id)
    except NotFound:
        return _page(409, problem=NotFound(f"The key {key_id} is already revoked."))
    except GatewayError as exc:
        return _page(exc.status, problem=exc)
    if key_id == p.key_id:
        session.clear()
        return redirect(url_for("web.login"))
    return redirect(url_for("web.keys", revoked=key_id))
