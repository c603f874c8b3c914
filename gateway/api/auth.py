"""API keys: Bearer tokens, stored only as SHA-256 hashes, each owned by one organisation."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

from flask import g, request

from gateway.domain.audit import Actor
from gateway.domain.errors import AuthenticationRequired
from gateway.persistence import repository as repo
from gateway.services.runtime import Runtime

KEY_PREFIX = "swg_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: an organisation and the role its key carries."""

    org_id: str
    org_name: str
    role: str
    codes: tuple[str, ...] = ()
    key_id: str | None = None

    @property
    def actor(self) -> Actor:
        """How the audit trail names this caller: organisation, API key and role."""
        return Actor("org", self.org_id, self.key_id, self.role)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    """A fresh random API key with a recognisable prefix (for secret scanners)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def current_principal(rt: Runtime) -> Principal:
    """The caller's principal, or AuthenticationRequired; cached on ``g`` per request."""
    cached = g.get("principal")
    if cached is not None:
        return cached
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthenticationRequired("Send an API key: Authorization: Bearer <key>.")
    with rt.engine.connect() as conn:
        row = repo.find_org_by_key_hash(conn, hash_key(token.strip()))
    if row is None:
        raise AuthenticationRequired("The API key is unknown or revoked.")
    g.principal = Principal(
        row["id"], row["name"], row["role"], tuple(row["codes"] or ()), row["key_id"]
    )
    return g.principal
