"""Signing in to the dashboard, and CSRF protection for its forms.

A user signs in with a username and password (the users table, scrypt hashes) or by pasting
an API key. The session cookie (signed with the web secret) keeps only the user's id or the
key's SHA-256 hash, never a secret, and every request looks it up again, so disabling the
user or revoking the key ends the session at once. Either way the session acts as the same
Principal the API builds (organisation, codes, role), so it sees and may do exactly the same.
"""

from __future__ import annotations

import hmac
import secrets
from typing import Any

from flask import (
    Flask,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from werkzeug.wrappers import Response

from gateway.api.auth import Principal, hash_key
from gateway.persistence import accounts
from gateway.services.accounts import authenticate_user
from gateway.settings import Settings
from gateway.web.blueprint import bp

CSRF_FIELD = "csrf_token"


def web_secret(settings: Settings) -> bytes:
    """The session-signing key: configured, or kept in the data dir (made once, 0600)."""
    return settings.kept_secret("web-secret", settings.web_secret)


def configure(app: Flask, settings: Settings) -> None:
    """Session cookie settings for the dashboard."""
    app.secret_key = web_secret(settings)
    app.config.setdefault("SESSION_COOKIE_HTTPONLY", True)
    app.config.setdefault("SESSION_COOKIE_SAMESITE", "Lax")
    app.config.setdefault("SESSION_COOKIE_SECURE", settings.public_url.startswith("https:"))


def csrf_token() -> str:
    """This session's CSRF token (made on first use), for every form."""
    token = session.get(CSRF_FIELD)
    if not token:
        token = session[CSRF_FIELD] = secrets.token_urlsafe(32)
    return str(token)


def check_csrf() -> None:
    """Refuse a POST whose form token is not this session's (400)."""
    if request.method != "POST":
        return
    sent = request.form.get(CSRF_FIELD, "") or request.headers.get("X-CSRF-Token", "")
    expected = session.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(str(sent), str(expected)):
        abort(400, description="The form expired or did not come from this site; try again.")


def _runtime() -> Any:
    return current_app.extensions["gateway.runtime"]()


def sign_in(kind: str, **identity: str) -> None:
    """Start a fresh session (a new CSRF token too) for an authenticated identity."""
    session.clear()
    session["auth"] = {"kind": kind, **identity}
    session.permanent = False
    csrf_token()


def _principal(auth: dict[str, Any]) -> Principal | None:
    with _runtime().engine.connect() as conn:
        if auth.get("kind") == "api_key":
            row = accounts.find_principal_row(conn, str(auth.get("key_hash", "")))
            if row is not None:
                codes = tuple(row["codes"] or ())
                return Principal(row["org_id"], row["org_name"], row["role"], codes, row["key_id"])
        elif auth.get("kind") == "user":
            row = accounts.find_user_principal_row(conn, str(auth.get("user_id", "")))
            if row is not None:
                codes = tuple(row["codes"] or ())
                return Principal(
                    row["org_id"], row["org_name"], row["role"], codes, user_id=row["user_id"]
                )
    return None


def web_principal() -> Principal | None:
    """Who is signed in, or None; a disabled user or a revoked key signs the session out."""
    auth = session.get("auth")
    principal = _principal(auth) if isinstance(auth, dict) else None
    if principal is None:
        session.pop("auth", None)
    return principal


def signed_in_as() -> str:
    """The username of a password session, or "" for a key session."""
    auth = session.get("auth")
    return str(auth.get("username", "")) if isinstance(auth, dict) else ""


def _next_page() -> Response:
    target = request.args.get("next", "")
    safe = target.startswith("/dashboard") and "//" not in target and "\\" not in target
    return redirect(target if safe else url_for("web.declarations"))


BAD_SIGN_IN = "Wrong username or password. 用户名或密码错误。"
BAD_KEY = "That API key is unknown or revoked. 密钥无效或已吊销。"


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int]:
    """Sign in with a username and password, or by pasting an API key."""
    error, status, username = None, 200, ""
    if request.method == "POST" and "username" in request.form:
        username = request.form.get("username", "").strip()[:120]
        password = request.form.get("password", "")
        who = None
        if username and password and len(password) <= 1024:
            who = authenticate_user(_runtime().engine, username, password)
        if who is not None:
            sign_in("user", user_id=str(who["user_id"]), username=username.lower())
            return _next_page()
        error, status = BAD_SIGN_IN, 401  # the same for an unknown, disabled or wrong one
    elif request.method == "POST":
        key = request.form.get("api_key", "").strip()
        key_hash = hash_key(key)
        with _runtime().engine.connect() as conn:
            row = accounts.find_principal_row(conn, key_hash) if key and len(key) <= 200 else None
        if row is not None:
            sign_in("api_key", key_hash=key_hash)
            return _next_page()
        error, status = BAD_KEY, 401
    return render_template("login.html", error=error, username=username), status


@bp.post("/logout")
def logout() -> Response:
    """Sign out: forget the session."""
    session.clear()
    return redirect(url_for("web.login"))
