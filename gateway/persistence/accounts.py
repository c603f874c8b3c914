"""Organisations, API keys and users (Core SQL); secrets are only ever stored hashed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, func, insert, or_, select, update
from sqlalchemy.engine import RowMapping

from gateway.persistence import tables as t
from gateway.persistence.repository import now
from gateway.persistence.visibility import set_org_codes

_o, _k, _u = t.organisations, t.api_keys, t.users


def find_org(conn: Connection, id_or_name: str) -> RowMapping | None:
    """An organisation by its id or its exact name."""
    return (
        conn.execute(select(_o).where(or_(_o.c.id == id_or_name, _o.c.name == id_or_name)))
        .mappings()
        .first()
    )


def list_orgs(conn: Connection) -> list[RowMapping]:
    """Every organisation with its count of live API keys and users, oldest first."""
    keys = (
        select(func.count())
        .where(_k.c.org_id == _o.c.id, _k.c.revoked_at.is_(None))
        .scalar_subquery()
    )
    users = (
        select(func.count())
        .where(_u.c.org_id == _o.c.id, _u.c.disabled_at.is_(None))
        .scalar_subquery()
    )
    return list(
        conn.execute(
            select(_o, keys.label("api_keys"), users.label("users")).order_by(_o.c.created_at)
        ).mappings()
    )


def update_org(conn: Connection, org_id: str, **values: Any) -> None:
    """Change an organisation; new codes replace its ``organisation_codes`` rows too."""
    conn.execute(update(_o).where(_o.c.id == org_id).values(**values))
    if "codes" in values:
        set_org_codes(conn, org_id, values["codes"])


# Every API request runs it: built once (building a statement costs more than running it).
_PRINCIPAL = (
    select(
        _k.c.id.label("key_id"),
        _k.c.role,
        _k.c.last_used_at,
        _o.c.id.label("org_id"),
        _o.c.name.label("org_name"),
        _o.c.codes,
    )
    .join(_o, _k.c.org_id == _o.c.id)
    .where(_k.c.key_hash == bindparam("b_hash"), _k.c.revoked_at.is_(None))
)


def find_principal_row(conn: Connection, key_hash: str) -> RowMapping | None:
    """The live key with this hash, its role and its organisation (id, name, codes)."""
    return conn.execute(_PRINCIPAL, {"b_hash": key_hash}).mappings().first()


def insert_key(
    conn: Connection,
    *,
    key_id: str,
    org_id: str,
    key_hash: str,
    prefix: str,
    role: str,
    name: str | None,
) -> None:
    conn.execute(
        insert(_k).values(
            id=key_id,
            org_id=org_id,
            key_hash=key_hash,
            prefix=prefix,
            role=role,
            name=name,
            created_at=now(),
        )
    )


def list_keys(conn: Connection, org_id: str | None = None) -> list[RowMapping]:
    """API keys (never their hashes) with their organisation's name, newest first."""
    stmt = (
        select(
            _k.c.id,
            _k.c.org_id,
            _o.c.name.label("org_name"),
            _k.c.prefix,
            _k.c.role,
            _k.c.name,
            _k.c.created_at,
            _k.c.last_used_at,
            _k.c.revoked_at,
        )
        .join(_o, _k.c.org_id == _o.c.id)
        .order_by(_k.c.created_at.desc(), _k.c.id.desc())
    )
    if org_id:
        stmt = stmt.where(_k.c.org_id == org_id)
    return list(conn.execute(stmt).mappings())


def revoke_key(conn: Connection, key_id: str) -> bool:
    """Revoke a live key; False when there is no such live key."""
    done = conn.execute(
        update(_k).where(_k.c.id == key_id, _k.c.revoked_at.is_(None)).values(revoked_at=now())
    )
    return done.rowcount == 1


def touch_key(conn: Connection, key_id: str, at: datetime) -> None:
    conn.execute(update(_k).where(_k.c.id == key_id).values(last_used_at=at))


def insert_user(conn: Connection, **values: Any) -> None:
    conn.execute(insert(_u).values(created_at=now(), **values))


def find_user(conn: Connection, username: str) -> RowMapping | None:
    """A user by username (stored in lower case), with its organisation's name and codes."""
    return (
        conn.execute(
            select(_u, _o.c.name.label("org_name"), _o.c.codes)
            .join(_o, _u.c.org_id == _o.c.id)
            .where(_u.c.username == username.strip().lower())
        )
        .mappings()
        .first()
    )


def list_users(conn: Connection, org_id: str | None = None) -> list[RowMapping]:
    stmt = (
        select(
            _u.c.id,
            _u.c.org_id,
            _o.c.name.label("org_name"),
            _u.c.username,
            _u.c.email,
            _u.c.role,
            _u.c.created_at,
            _u.c.disabled_at,
        )
        .join(_o, _u.c.org_id == _o.c.id)
        .order_by(_u.c.created_at)
    )
    if org_id:
        stmt = stmt.where(_u.c.org_id == org_id)
    return list(conn.execute(stmt).mappings())


def disable_user(conn: Connection, user_id: str) -> bool:
    done = conn.execute(
        update(_u).where(_u.c.id == user_id, _u.c.disabled_at.is_(None)).values(disabled_at=now())
    )
    return done.rowcount == 1


def get_key(conn: Connection, key_id: str) -> RowMapping | None:
    """One API key (never its hash) by id, revoked or not."""
    return (
        conn.execute(
            select(_k.c.id, _k.c.org_id, _k.c.role, _k.c.name, _k.c.revoked_at).where(
                _k.c.id == key_id
            )
        )
        .mappings()
        .first()
    )


def get_user(conn: Connection, user_id: str) -> RowMapping | None:
    """One user by id (never its password hash)."""
    return (
        conn.execute(
            select(_u.c.id, _u.c.org_id, _u.c.role, _u.c.disabled_at).where(_u.c.id == user_id)
        )
        .mappings()
        .first()
    )


def find_user_principal_row(conn: Connection, user_id: str) -> RowMapping | None:
    """An enabled user with its role and its organisation (id, name, codes)."""
    return (
        conn.execute(
            select(
                _u.c.id.label("user_id"),
                _u.c.username,
                _u.c.role,
                _o.c.id.label("org_id"),
                _o.c.name.label("org_name"),
                _o.c.codes,
            )
            .join(_o, _u.c.org_id == _o.c.id)
            .where(_u.c.id == user_id, _u.c.disabled_at.is_(None))
        )
        .mappings()
        .first()
    )
