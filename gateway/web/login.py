"""Signing in to the dashboard, and CSRF protection for its forms.

Today a user signs in by pasting an API key. The session cookie (signed with the web secret)
keeps only the key's SHA-256 hash, never the key, and every request looks the hash up again,
so a revoked key ends the session at once. A user/password form adds another ``kind`` of
sign-in here (``sign_in`` stores {"kind": ..., ...}; ``web_principal`` resolves each kind).
"""

from __future__ import annotations

import hmac
import os
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
from gateway.persistence import repository as repo
from gateway.settings import Settings
from gateway.web.blueprint import bp

CSRF_FIELD = "csrf_token"


def web_secret(settings: Settings) -> bytes:
    """The session-signing key: configured, or kept in the data dir (made once, 0600)."""
    if settings.web_secret:
        return settings.web_secret.encode()
    path = settings.data_path / "web-secret"
    if not path.exists():
        settings.data_path.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use theirs
            return path.read_text().strip().encode()
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
    return path.read_text().strip().encode()


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


def web_principal() -> Principal | None:
    """Who is signed in, or None; an unknown or revoked key signs the session out."""
    auth = session.get("auth")
    if not isinstance(auth, dict):
        return None
    if auth.get("kind") == "api_key":
        with _runtime().engine.connect() as conn:
            row = repo.find_org_by_key_hash(conn, str(auth.get("key_hash", "")))
        if row is not None:
            return Principal(row["id"], row["name"], row["role"], tuple(row["codes"] or ()))
    session.pop("auth", None)
    return None


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | tuple[str, int]:
    """Sign in by pasting an API key."""
    error, status = None, 200
    if request.method == "POST":
        key = request.form.get("api_key", "").strip()
        key_hash = hash_key(key)
        with _runtime().engine.connect() as conn:
            row = repo.find_org_by_key_hash(conn, key_hash) if key else None
        if row is not None:
            sign_in("api_key", key_hash=key_hash)
            target = request.args.get("next", "")
            safe = target.startswith("/dashboard") and "//" not in target and "\\" not in target
            return redirect(target if safe else url_for("web.declarations"))
        error, status = "That API key is unknown or revoked. 密钥无效或已吊销。", 401
    return render_template("login.html", error=error), status


@bp.post("/logout")
def logout() -> Response:
    """Sign out: forget the session."""
    session.clear()
    return redirect(url_for("web.login"))
