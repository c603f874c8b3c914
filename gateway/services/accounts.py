"""Operators' use cases for organisations, API keys and users (the CLI and, later, the
dashboard call these). A new API key is returned once and stored only as its SHA-256."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.engine import RowMapping

from gateway.domain.access import Role
from gateway.domain.audit import Actor
from gateway.domain.errors import InputError, NotFound
from gateway.domain.passwords import hash_password, password_problem, verify_password
from gateway.persistence import accounts as acc
from gateway.persistence.ids import new_id
from gateway.services import audit

KEY_PREFIX = "swg_"
# A real hash to compare against when the user is unknown, so timing tells nothing.
_NO_USER_HASH = hash_password(secrets.token_urlsafe(16))


def hash_key(key: str) -> str:
    """What the database keeps of an API key."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    """A fresh random API key with a recognisable prefix (for secret scanners)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


@dataclass(frozen=True)
class IssuedKey:
    """A key just created: ``secret`` is shown once and never again."""

    id: str
    org_id: str
    role: str
    name: str | None
    secret: str


def _role(role: str) -> str:
    try:
        return Role(role).value
    except ValueError:
        raise InputError(
            f"Unknown role {role!r}; one of {', '.join(r.value for r in Role)}."
        ) from None


def get_org(engine: Engine, id_or_name: str) -> RowMapping:
    """The organisation by id or name, or NotFound."""
    with engine.connect() as conn:
        org = acc.find_org(conn, id_or_name)
    if org is None:
        raise NotFound(f"No organisation {id_or_name!r} (give its id or name).")
    return org


def issue_key(
    engine: Engine,
    org: str,
    role: str,
    name: str | None = None,
    secret: str | None = None,
    actor: Actor | None = None,
) -> IssuedKey:
    """Create an API key for an organisation (id or name), recorded in the audit trail as
    done by ``actor``; ``secret`` only for demos/tests."""
    role = _role(role)
    org_id = str(get_org(engine, org)["id"])
    key = secret or new_api_key()
    issued = IssuedKey(new_id("key"), org_id, role, name, key)
    with engine.begin() as conn:
        acc.insert_key(
            conn,
            key_id=issued.id,
            org_id=org_id,
            key_hash=hash_key(key),
            prefix=key[:8],
            role=role,
            name=name,
        )
        audit.record(
            conn, actor or audit.SYSTEM, "api_key.created", [org_id, issued.id], {"role": role}
        )
    return issued


def list_api_keys(engine: Engine, org: str | None = None) -> list[RowMapping]:
    """Every API key (never its hash), of one organisation when ``org`` is given."""
    org_id = str(get_org(engine, org)["id"]) if org else None
    with engine.connect() as conn:
        return acc.list_keys(conn, org_id)


def revoke_api_key(
    engine: Engine, key_id: str, actor: Actor | None = None, org_id: str | None = None
) -> None:
    """Revoke a key at once: the next request with it is answered 401. With ``org_id``
    only that organisation's key (another's is NotFound, as if it did not exist)."""
    with engine.begin() as conn:
        key = acc.get_key(conn, key_id)
        if key is None or (org_id is not None and key["org_id"] != org_id):
            raise NotFound(f"No live API key {key_id!r}.")
        if not acc.revoke_key(conn, key_id):
            raise NotFound(f"No live API key {key_id!r}.")
        audit.record(
            conn,
            actor or audit.SYSTEM,
            "api_key.revoked",
            [key["org_id"], key_id],
            {"role": key["role"]},
        )


def create_user(
    engine: Engine,
    org: str,
    username: str,
    password: str,
    role: str,
    email: str | None = None,
    actor: Actor | None = None,
) -> str:
    """A dashboard user of an organisation; its password is kept as a scrypt hash."""
    role, username = _role(role), username.strip().lower()
    if not username or len(username) > 120:
        raise InputError("A username needs 1 to 120 characters.")
    problem = password_problem(password)
    if problem:
        raise InputError(f"Password refused: {problem}.")
    org_id = str(get_org(engine, org)["id"])
    user_id = new_id("usr")
    with engine.begin() as conn:
        if acc.find_user(conn, username) is not None:
            raise InputError(f"The username {username!r} is taken.")
        acc.insert_user(
            conn,
            id=user_id,
            org_id=org_id,
            username=username,
            email=email,
            role=role,
            password_hash=hash_password(password),
        )
        audit.record(conn, actor or audit.SYSTEM, "user.created", [org_id, user_id], {"role": role})
    return user_id


def disable_user(engine: Engine, user_id: str, actor: Actor | None = None) -> None:
    """Disable a user: it can no longer sign in, and its open sessions end."""
    with engine.begin() as conn:
        user = acc.get_user(conn, user_id)
        if user is None or not acc.disable_user(conn, user_id):
            raise NotFound(f"No enabled user {user_id!r}.")
        audit.record(conn, actor or audit.SYSTEM, "user.disabled", [user["org_id"], user_id])


def authenticate_user(engine: Engine, username: str, password: str) -> dict[str, Any] | None:
    """The user's org, role and codes when the password matches and the user is enabled."""
    with engine.connect() as conn:
        user = acc.find_user(conn, username)
    ok = verify_password(password, user["password_hash"] if user else _NO_USER_HASH)
    if user is None or not ok or user["disabled_at"] is not None:
        return None
    return {
        "user_id": user["id"],
        "org_id": user["org_id"],
        "org_name": user["org_name"],
        "role": user["role"],
        "codes": tuple(user["codes"] or ()),
    }
