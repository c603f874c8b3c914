"""First-run provisioning: database schema, sandbox test keys, the demo organisation."""

from __future__ import annotations

import os
from pathlib import Path

from gateway.api.auth import hash_key, new_api_key
from gateway.bootstrap import data_key_ring, declarant_key_paths, gateway_key_paths
from gateway.domain.audit import Actor
from gateway.persistence import accounts
from gateway.persistence import repository as repo
from gateway.persistence.database import get_engine
from gateway.persistence.ids import new_id
from gateway.persistence.migrate import upgrade
from gateway.services import audit
from gateway.services.keyring import list_keys, publish_certificate, register_key
from gateway.settings import Settings
from signing.keys import generate_test_identity, load_signing_key

SANDBOX_AUTHORITIES = ("customs", "inspection", "port")


def sandbox_key_paths(settings: Settings, authority: str) -> tuple[Path, Path]:
    """The sandbox authority's own (test) signing key and certificate."""
    return (
        settings.keys_path / f"sandbox-{authority}.key",
        settings.keys_path / f"sandbox-{authority}.crt",
    )


def ensure_keys(settings: Settings) -> list[Path]:
    """Generate the test keys that are missing (declarant, gateway, sandbox authorities) and
    register the gateway's certificate with the authorities (the port trusts it)."""
    settings.keys_path.mkdir(parents=True, exist_ok=True)
    made: list[Path] = []
    pairs = [
        (declarant_key_paths(settings), "Demo Broker Co. declarant (TEST)"),
        (gateway_key_paths(settings), "Single-window gateway (TEST)"),
    ]
    pairs += [
        (sandbox_key_paths(settings, a), f"Sandbox {a} authority (TEST)")
        for a in SANDBOX_AUTHORITIES
    ]
    for (key, cert), name in pairs:
        key, cert = Path(key), Path(cert)
        if not key.exists():
            generate_test_identity(name, key, cert)
            made.append(key)
    publish_certificate(
        settings.registered_path,
        settings.gateway_dxp_id,
        load_signing_key(*gateway_key_paths(settings)),
    )
    data_key_ring(settings)  # the data key too, before the processes that share it start
    return made


def init_db(settings: Settings) -> None:
    """Create or upgrade the database schema."""
    settings.data_path.mkdir(parents=True, exist_ok=True)
    upgrade(settings.db_url)


def create_org(
    settings: Settings,
    name: str,
    codes: list[str],
    dxp_id: str,
    role: str = "broker",
    api_key: str | None = None,
    key_name: str | None = None,
    *,
    actor: Actor | None = None,
) -> tuple[str, str]:
    """Create an organisation (or reuse one by name) and give it an API key."""
    key = api_key or new_api_key()
    engine = get_engine(settings.db_url)
    with engine.begin() as conn:
        org = repo.find_org_by_name(conn, name)
        org_id = org["id"] if org else new_id("org")
        if org is None:
            repo.insert_org(conn, org_id, name, codes, dxp_id)
            audit.record(conn, actor or audit.SYSTEM, "org.created", [org_id], {"codes": codes})
        if not repo.key_hash_exists(conn, hash_key(key)):
            key_id = new_id("key")
            accounts.insert_key(
                conn,
                key_id=key_id,
                org_id=org_id,
                key_hash=hash_key(key),
                prefix=key[:8],
                role=role,
                name=key_name,
            )
            audit.record(
                conn, actor or audit.SYSTEM, "api_key.created", [org_id, key_id], {"role": role}
            )
    return org_id, key


def ensure_demo_org(settings: Settings) -> str:
    """The demo organisation's API key: configured, remembered in the data dir, or new.
    Its signing key is the generated test key in the keys dir, registered once."""
    remembered = settings.data_path / "demo-api-key"
    key = settings.demo_api_key or (remembered.read_text().strip() if remembered.exists() else "")
    org_id, key = create_org(
        settings,
        settings.demo_org_name,
        settings.demo_codes,
        settings.demo_org_dxp_id,
        api_key=key or None,
        key_name="demo",
    )
    if not settings.demo_api_key:
        remembered.write_text(key + "\n")
        os.chmod(remembered, 0o600)
    engine = get_engine(settings.db_url)
    if not [k for k in list_keys(engine, org_id) if k.status == "active"]:
        key_path, cert_path = declarant_key_paths(settings)
        register_key(
            engine,
            settings.registered_path,
            org_id,
            "file",
            {"key": str(key_path), "cert": str(cert_path)},
        )
    return key
