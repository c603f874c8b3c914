"""Organisation keys: one active signer, rotation keeps the old listed, expiry is warned."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.domain.errors import NoSigningKey, SigningFailed
from gateway.provisioning import create_org
from gateway.services.keyring import (
    KeyRing,
    expiring_keys,
    generate_key,
    list_keys,
    register_key,
)
from gateway.settings import Settings
from signing.keys import build_self_signed


def _short_lived_pem(tmp: Path, days: int) -> dict[str, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    cert = build_self_signed(
        "Short lived", key, now - dt.timedelta(days=1), now + dt.timedelta(days=days)
    )
    (tmp / "s.key").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    (tmp / "s.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return {"key": str(tmp / "s.key"), "cert": str(tmp / "s.crt")}


def test_rotation_leaves_one_active_key_and_the_ring_follows_it(
    settings: Settings, runtime, tmp_path: Path
):
    org_id, _ = create_org(settings, "Rotating Co.", ["3300000001"], "DXPENT0000000033")
    ring = KeyRing(runtime.engine, ttl=0)
    with pytest.raises(NoSigningKey):
        ring.signer_for(org_id)
    first = generate_key(runtime.engine, settings.keys_path, settings.registered_path, org_id)
    assert ring.signer_for(org_id)[0].key_name == first.key_name
    second = generate_key(
        runtime.engine, settings.keys_path, settings.registered_path, org_id, "sm2"
    )
    key, policy = ring.signer_for(org_id)
    assert (key.key_name, policy.name) == (second.key_name, "sm2-sm3")
    statuses = {k.key_name: k.status for k in list_keys(runtime.engine, org_id)}
    assert statuses == {first.key_name: "retired", second.key_name: "active"}
    registered = settings.registered_path / "DXPENT0000000033"
    assert {p.stem for p in registered.glob("*.crt")} == {first.key_name, second.key_name}


def test_a_key_that_expires_soon_is_warned_about(settings: Settings, runtime, tmp_path: Path):
    org_id, _ = create_org(settings, "Expiring Co.", ["3300000002"], "DXPENT0000000034")
    info = register_key(
        runtime.engine,
        settings.registered_path,
        org_id,
        "file",
        _short_lived_pem(tmp_path, days=10),
    )
    assert info.expiring and 8 <= info.days_left <= 10
    assert info.id in {k.id for k in expiring_keys(runtime.engine)}


def test_a_key_that_does_not_open_is_refused_with_the_reason(
    settings: Settings, runtime, tmp_path: Path
):
    org_id, _ = create_org(settings, "Broken Co.", ["3300000003"], "DXPENT0000000035")
    with pytest.raises(SigningFailed) as err:
        register_key(
            runtime.engine,
            settings.registered_path,
            org_id,
            "pkcs12",
            {"path": str(tmp_path / "missing.p12")},
        )
    assert "missing.p12" in err.value.detail
    assert list_keys(runtime.engine, org_id) == []


def test_a_policy_is_chosen_per_key_not_globally(settings: Settings, runtime, tmp_path: Path):
    from lxml import etree

    from signing import TrustStore, sign_enveloped, verify_enveloped
    from signing.policy import RSA_SHA1_LEGACY

    legacy_org, _ = create_org(settings, "Legacy Co.", ["3300000004"], "DXPENT0000000036")
    modern_org, _ = create_org(settings, "Modern Co.", ["3300000005"], "DXPENT0000000037")
    register_key(
        runtime.engine,
        settings.registered_path,
        legacy_org,
        "file",
        {**_short_lived_pem(tmp_path, days=400), "policy": "rsa-sha1-legacy"},
    )
    generate_key(runtime.engine, settings.keys_path, settings.registered_path, modern_org)
    ring = KeyRing(runtime.engine, ttl=0)
    assert ring.signer_for(legacy_org)[1] is RSA_SHA1_LEGACY
    assert ring.signer_for(modern_org)[1].name == "rsa-sha256"

    key, policy = ring.signer_for(legacy_org)
    doc = etree.fromstring(
        b'<ceb:M xmlns:ceb="http://www.chinaport.gov.cn/ceb"><ceb:a>1</ceb:a></ceb:M>'
    )
    sign_enveloped(doc, key, policy)
    assert b"rsa-sha1" in etree.tostring(doc)
    assert verify_enveloped(doc, TrustStore([key.certificate]), policy).key_name == key.key_name


def test_exclusive_c14n_is_available_as_a_named_policy(tmp_path: Path):
    from lxml import etree

    from signing import (
        TrustStore,
        generate_test_identity,
        load_signing_key,
        sign_enveloped,
        verify_enveloped,
    )
    from signing.policy import EXC_C14N, policy_by_name

    generate_test_identity("Exc", tmp_path / "k.key", tmp_path / "k.crt")
    key = load_signing_key(tmp_path / "k.key", tmp_path / "k.crt")
    policy = policy_by_name("rsa-sha256-exc-c14n")
    doc = etree.fromstring(
        b'<ceb:M xmlns:ceb="http://www.chinaport.gov.cn/ceb"><ceb:a>1</ceb:a></ceb:M>'
    )
    sign_enveloped(doc, key, policy)
    assert EXC_C14N.encode() in etree.tostring(doc)
    assert verify_enveloped(doc, TrustStore([key.certificate]), policy).key_name == key.key_name
