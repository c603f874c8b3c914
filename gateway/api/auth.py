"""API keys: Bearer tokens, stored only as SHA-256 hashes, each owned by one organisation."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from flask import g, request

from gateway.domain.access import Capability, Viewer, require
from gateway.domain.audit import Actor
from gateway.domain.errors import AuthenticationRequired
from gateway.persistence import accounts
from gateway.persistence.repository import as_utc, now
from gateway.services.accounts import KEY_PREFIX, hash_key, new_api_key
from gateway.services.runtime import Runtime

__all__ = ["KEY_PREFIX", "Principal", "current_principal", "hash_key", "new_api_key"]
log = logging.getLogger(__name__)
TOUCH_EVERY = 60.0  # seconds between last_used_at writes for one key
_touched: dict[str, float] = {}
_touch_lock = threading.Lock()


@dataclass(frozen=True)
class Principal:
    """Who is calling: an organisation, the key it used and the role that key carries."""

    org_id: str
    org_name: str
    role: str
    codes: tuple[str, ...] = ()
    key_id: str = ""
    user_id: str = ""  # a dashboard user signed in with a password (then no key_id)

    @property
    def actor(self) -> Actor:
        """How the audit trail names this caller: organisation, its credential (the API key,
        or the dashboard user ``usr_…`` signed in with a password) and role."""
        return Actor("org", self.org_id, self.key_id or self.user_id or None, self.role)

    @property
    def viewer(self) -> Viewer:
        """Whose declarations this caller sees (DESIGN.md §5)."""
        return Viewer.of(self.org_id, self.role, self.codes)

    def require(self, capability: Capability) -> Principal:
        """Self, or PermissionDenied (403) when this role may not do ``capability``."""
        require(self.role, capability)
        return self


def _touch(rt: Runtime, key_id: str, last_used: object) -> None:
    """Refresh last_used_at at most once a minute per key: cheap, and never fails a call."""
    mono = time.monotonic()
    with _touch_lock:
        if mono - _touched.get(key_id, -TOUCH_EVERY) < TOUCH_EVERY:
            return
        _touched[key_id] = mono
    at = now()
    previous = as_utc(last_used) if last_used is not None else None  # type: ignore[arg-type]
    if previous is not None and (at - previous).total_seconds() < TOUCH_EVERY:
        return
    try:
        with rt.engine.begin() as conn:
            accounts.touch_key(conn, key_id, at)
    except Exception as exc:  # a busy database must not fail the request it serves
        log.debug("last_used_at not updated for %s: %s", key_id, exc)


def find_principal(rt: Runtime) -> Principal | None:
    """The caller's principal, or None without a valid key; cached on ``g`` per request."""
    if "principal" in g:
        return g.principal  # type: ignore[no-any-return]
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or len(token) > 200:
        g.principal = None
        return None
    with rt.engine.connect() as conn:  # a database error propagates: not cached as "no key"
        row = accounts.find_principal_row(conn, hash_key(token))
    if row is None:
        g.principal = None
        return None
    g.principal = Principal(
        row["org_id"], row["org_name"], row["role"], tuple(row["codes"] or ()), row["key_id"]
    )
    _touch(rt, row["key_id"], row["last_used_at"])
    return g.principal  # type: ignore[no-any-return]


def current_principal(rt: Runtime, capability: Capability | None = None) -> Principal:
    """The caller (401 without a valid key), allowed ``capability`` when given (else 403)."""
    principal = find_principal(rt)
    if principal is None:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise AuthenticationRequired("Send an API key: Authorization: Bearer <key>.")
        raise AuthenticationRequired("The API key is unknown or revoked.")
    if capability is not None:
        principal.require(capability)
    return principal
