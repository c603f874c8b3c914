"""Organisations' signing keys: register, rotate, load once, and warn before they expire.

A key is held by a provider (PEM files, a PKCS#12 file, or a PKCS#11 token such as a broker's
USB key); the database keeps where it is and its certificate, never a secret (passwords and
PINs are named by environment variable or file). One key per organisation is active and
signs; retired keys stay listed so their old signatures can still be checked until their
certificates expire. Each active certificate is also written to the registered-certificates
folder, which is what the authorities (the sandbox here) trust for that sender.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from sqlalchemy import Engine, select, update

from gateway.domain.audit import Actor
from gateway.domain.errors import NoSigningKey, NotFound, SigningFailed
from gateway.persistence import repository as repo
from gateway.persistence import tables as t
from gateway.persistence.ids import new_id
from gateway.services import audit
from signing import SignatureError
from signing.keys import KeyProvider, generate_test_identity, load_signing_key
from signing.policy import SignaturePolicy, default_policy_for_key_type, policy_by_name
from signing.providers import load_pkcs12, open_pkcs11

EXPIRY_WARNING_DAYS = 30


def load_provider(provider: str, config: dict[str, Any]) -> KeyProvider:
    """Open a key where its configuration says it is (raises SignatureError / OSError)."""
    if provider == "file":
        return load_signing_key(config["key"], config["cert"])
    if provider == "pkcs12":
        return load_pkcs12(
            config["path"],
            password_env=config.get("password_env"),
            password_file=config.get("password_file"),
        )
    if provider == "pkcs11":
        return open_pkcs11(
            config["library"],
            config["token"],
            config["key_label"],
            pin_env=config.get("pin_env"),
            pin_file=config.get("pin_file"),
            cert_path=config.get("cert"),
        )
    raise ValueError(f"unknown key provider {provider!r}")


@dataclass(frozen=True)
class KeyInfo:
    """What an operator sees of a key (no secrets)."""

    id: str
    org_id: str
    key_name: str
    key_type: str
    provider: str
    status: str
    not_after: datetime
    subject: str

    @property
    def days_left(self) -> int:
        return (self.not_after - datetime.now(UTC)).days

    @property
    def expiring(self) -> bool:
        return self.status == "active" and self.days_left < EXPIRY_WARNING_DAYS


def _info(row: Any) -> KeyInfo:
    cert = x509.load_pem_x509_certificate(row["cert_pem"].encode())
    return KeyInfo(
        row["id"],
        row["org_id"],
        row["key_name"],
        row["key_type"],
        row["provider"],
        row["status"],
        repo.as_utc(row["not_after"]),  # type: ignore[arg-type]
        cert.subject.rfc4514_string(),
    )


def publish_certificate(registered_dir: Path, dxp_id: str, key: KeyProvider) -> Path:
    """Put the certificate where the authorities look up a sender's registered keys."""
    folder = registered_dir / dxp_id
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{key.key_name}.crt"
    path.write_bytes(key.certificate.public_bytes(serialization.Encoding.PEM))
    return path


def register_key(
    engine: Engine,
    registered_dir: Path,
    org_id: str,
    provider: str,
    config: dict[str, Any],
    *,
    actor: Actor | None = None,
) -> KeyInfo:
    """Check the key opens and matches its certificate, make it the org's active key, and
    retire the previous one (it stays valid for verification until it expires)."""
    try:
        key = load_provider(provider, config)
    except (SignatureError, OSError, ValueError, KeyError) as exc:
        raise SigningFailed(f"The key cannot be used: {exc}") from None
    cert = key.certificate
    at = repo.now()
    with engine.begin() as conn:
        org = (
            conn.execute(select(t.organisations).where(t.organisations.c.id == org_id))
            .mappings()
            .first()
        )
        if org is None:
            raise NotFound(f"No organisation {org_id}.")
        conn.execute(
            update(t.org_keys)
            .where(t.org_keys.c.org_id == org_id, t.org_keys.c.status == "active")
            .values(status="retired", retired_at=at)
        )
        key_id = new_id("kid")
        conn.execute(
            t.org_keys.insert().values(
                id=key_id,
                org_id=org_id,
                key_name=key.key_name,
                key_type=key.key_type,
                provider=provider,
                config=config,
                cert_pem=cert.public_bytes(serialization.Encoding.PEM).decode(),
                not_before=cert.not_valid_before_utc,
                not_after=cert.not_valid_after_utc,
                status="active",
                created_at=at,
            )
        )
        row = conn.execute(select(t.org_keys).where(t.org_keys.c.id == key_id)).mappings().one()
        audit.record(
            conn,
            actor or audit.SYSTEM,
            "signing_key.activated",
            [org_id, key_id],
            {"provider": provider, "key_type": key.key_type, "serial": key.key_name},
        )
    publish_certificate(registered_dir, org["dxp_id"], key)
    return _info(row)


def generate_key(
    engine: Engine,
    keys_dir: Path,
    registered_dir: Path,
    org_id: str,
    key_type: str = "rsa",
    common_name: str | None = None,
    *,
    actor: Actor | None = None,
) -> KeyInfo:
    """Create a TEST key pair and self-signed certificate for an org and activate it."""
    folder = keys_dir / "orgs" / org_id
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / f"{int(time.time() * 1000)}-{key_type}"
    key_path, cert_path = stem.with_suffix(".key"), stem.with_suffix(".crt")
    generate_test_identity(
        common_name or f"{org_id} declarant (TEST)", key_path, cert_path, key_type=key_type
    )
    return register_key(
        engine,
        registered_dir,
        org_id,
        "file",
        {"key": str(key_path), "cert": str(cert_path)},
        actor=actor,
    )


def list_keys(engine: Engine, org_id: str | None = None) -> list[KeyInfo]:
    """Every key, newest first (optionally of one organisation)."""
    stmt = select(t.org_keys).order_by(t.org_keys.c.created_at.desc())
    if org_id:
        stmt = stmt.where(t.org_keys.c.org_id == org_id)
    with engine.connect() as conn:
        return [_info(r) for r in conn.execute(stmt).mappings()]


class KeyRing:
    """Each organisation's active signer, opened once per process and re-checked every few
    seconds so a rotation takes effect everywhere without a restart. The policy is the key's
    own (``config["policy"]``, chosen per counterparty) or the default for its key type."""

    def __init__(self, engine: Engine, ttl: float = 5.0) -> None:
        self._engine = engine
        self._ttl = ttl
        self._lock = threading.Lock()
        self._active: dict[str, tuple[float, str]] = {}  # org -> (checked at, key id)
        self._providers: dict[str, tuple[KeyProvider, SignaturePolicy]] = {}

    def signer_for(self, org_id: str) -> tuple[KeyProvider, SignaturePolicy]:
        """The active key of ``org_id`` and the policy it signs with."""
        now = time.monotonic()
        with self._lock:
            cached = self._active.get(org_id)
            if cached is None or now - cached[0] > self._ttl:
                cached = (now, self._active_key_id(org_id))
                self._active[org_id] = cached
            key_id = cached[1]
            if key_id not in self._providers:
                self._providers[key_id] = self._open(key_id)
            return self._providers[key_id]

    def _active_key_id(self, org_id: str) -> str:
        with self._engine.connect() as conn:
            found = conn.execute(
                select(t.org_keys.c.id).where(
                    t.org_keys.c.org_id == org_id, t.org_keys.c.status == "active"
                )
            ).scalar()
        if found is None:
            raise NoSigningKey(
                f"Organisation {org_id} has no active signing key; an operator registers one "
                "with `python -m gateway keys import` (or `keys generate` for a test key)."
            )
        return str(found)

    def _open(self, key_id: str) -> tuple[KeyProvider, SignaturePolicy]:
        with self._engine.connect() as conn:
            row = conn.execute(select(t.org_keys).where(t.org_keys.c.id == key_id)).mappings().one()
        try:
            key = load_provider(row["provider"], row["config"])
        except (SignatureError, OSError, ValueError, KeyError) as exc:
            raise SigningFailed(f"Signing key {row['key_name']} cannot be opened: {exc}") from None
        named = row["config"].get("policy")
        policy = policy_by_name(named) if named else default_policy_for_key_type(key.key_type)
        return key, policy


def expiring_keys(
    engine: Engine, within: timedelta = timedelta(days=EXPIRY_WARNING_DAYS)
) -> list[KeyInfo]:
    """Active keys whose certificates end within ``within``: rotate them before they do."""
    limit = datetime.now(UTC) + within
    return [k for k in list_keys(engine) if k.status == "active" and k.not_after <= limit]
