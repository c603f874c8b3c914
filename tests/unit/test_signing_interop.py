"""Interop both ways: our lean signer vs signxml and xmlsec1, per policy each of them supports.

- ours -> signxml verifies; signxml -> ours verifies (RSA-SHA256, ECDSA-SHA256; signxml 5
  refuses to sign with SHA-1, so RSA-SHA1 is checked against xmlsec1 only).
- ours -> xmlsec1 verifies; xmlsec1 -> ours verifies (RSA-SHA256, RSA-SHA1, ECDSA-SHA256).
xmlsec1 and signxml have no SM2/SM3: that policy is covered in test_signing_sm2.py.
"""

from __future__ import annotations

import datetime as dt
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from signing import (
    ECDSA_SHA256,
    RSA_SHA1_LEGACY,
    RSA_SHA256,
    SignatureError,
    TrustStore,
    load_signing_key,
    sign_enveloped,
    verify_enveloped,
)
from signing.keys import SigningKey, build_self_signed
from signing.policy import C14N, ENVELOPED
from signing.signxml_engine import verify_with_signxml

XMLSEC1 = shutil.which("xmlsec1")
needs_xmlsec1 = pytest.mark.skipif(XMLSEC1 is None, reason="xmlsec1 is not installed")
NOW = dt.datetime.now(dt.UTC)
DS = "http://www.w3.org/2000/09/xmldsig#"

DOC = """<?xml version="1.0" encoding="UTF-8"?>
<ceb:CEB311Message xmlns:ceb="http://www.chinaport.gov.cn/ceb" guid="A-1" version="1.0">
    <ceb:Order>
        <ceb:OrderHead><ceb:orderNo>order-1 &amp; co</ceb:orderNo>
            <ceb:ebpName>海南星创</ceb:ebpName></ceb:OrderHead>
        <ceb:OrderList><ceb:gnum>1</ceb:gnum><ceb:price>1000.00</ceb:price></ceb:OrderList>
    </ceb:Order>
    <ceb:BaseTransfer><ceb:copCode>46121601BC</ceb:copCode></ceb:BaseTransfer>
</ceb:CEB311Message>
""".encode()


@pytest.fixture(scope="module")
def identities(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[SigningKey, Path]]:
    tmp = tmp_path_factory.mktemp("interop")
    out = {}
    for kind, private_key in (
        ("rsa", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ec", ec.generate_private_key(ec.SECP256R1())),
    ):
        cert = build_self_signed(
            f"Interop {kind}", private_key, NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=9)
        )
        key_path, cert_path = tmp / f"{kind}.key", tmp / f"{kind}.pem"
        key_path.write_bytes(
            private_key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        out[kind] = (load_signing_key(key_path, cert_path), key_path, cert_path)
    return out


POLICIES = [("rsa", RSA_SHA256), ("rsa", RSA_SHA1_LEGACY), ("ec", ECDSA_SHA256)]


def _ours(key: SigningKey, policy) -> bytes:
    root = sign_enveloped(etree.fromstring(DOC), key, policy)
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def _trust(key: SigningKey) -> TrustStore:
    return TrustStore([key.certificate])


# --------------------------------------------------------------------------- signxml


@pytest.mark.parametrize(("kind", "policy"), POLICIES)
def test_signxml_verifies_our_signature(identities, kind: str, policy) -> None:
    key = identities[kind][0]
    root = etree.fromstring(_ours(key, policy))
    signed = verify_with_signxml(
        root, key.certificate, policy.signature_method, policy.digest_method
    )
    assert b"order-1 &amp; co" in signed and b"Signature" not in signed


@pytest.mark.parametrize(("kind", "policy"), [("rsa", RSA_SHA256), ("ec", ECDSA_SHA256)])
def test_we_verify_signxml_signature(identities, kind: str, policy) -> None:
    from signxml import SignatureConstructionMethod, XMLSigner

    key, key_path, cert_path = identities[kind]
    signer = XMLSigner(
        method=SignatureConstructionMethod.enveloped,
        signature_algorithm=policy.signature_method,
        digest_algorithm=policy.digest_method,
        c14n_algorithm=C14N,
    )
    root = signer.sign(etree.fromstring(DOC), key=key_path.read_bytes(), cert=cert_path.read_text())
    data = etree.tostring(root)
    for engine in ("signxml", "lean"):
        result = verify_enveloped(etree.fromstring(data), _trust(key), policy, engine=engine)
        assert result.certificate == key.certificate
        assert result.root.findtext(".//{*}orderNo") == "order-1 & co"
    tampered = data.replace(b"1000.00", b"9000.00")
    for engine in ("signxml", "lean"):
        with pytest.raises(SignatureError) as info:
            verify_enveloped(etree.fromstring(tampered), _trust(key), policy, engine=engine)
        assert info.value.code == "signature.digest_mismatch"


def test_engines_agree_on_error_codes(identities) -> None:
    key = identities["rsa"][0]
    data = _ours(key, RSA_SHA256)
    root = etree.fromstring(data)
    value = root.find(f".//{{{DS}}}SignatureValue")
    value.text = ("A" if value.text[0] != "A" else "B") + value.text[1:]
    bad_value = etree.tostring(root)
    for engine in ("signxml", "lean"):
        for payload, code in (
            (data.replace(b"1000.00", b"1000.01"), "signature.digest_mismatch"),
            (bad_value, "signature.invalid"),
        ):
            with pytest.raises(SignatureError) as info:
                verify_enveloped(etree.fromstring(payload), _trust(key), engine=engine)
            assert info.value.code == code, (engine, info.value)
    with pytest.raises(ValueError, match="unknown verification engine"):
        verify_enveloped(etree.fromstring(data), _trust(key), engine="nope")


# --------------------------------------------------------------------------- xmlsec1


def _xmlsec1(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [XMLSEC1, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


@needs_xmlsec1
@pytest.mark.parametrize(("kind", "policy"), POLICIES)
def test_xmlsec1_verifies_ours(identities, tmp_path: Path, kind: str, policy) -> None:
    key, _, cert_path = identities[kind]
    (tmp_path / "signed.xml").write_bytes(_ours(key, policy))
    result = _xmlsec1("--verify", "--trusted-pem", cert_path, tmp_path / "signed.xml")
    assert result.returncode == 0, result.stderr


def _template(policy) -> bytes:
    signature = (
        f'<ds:Signature xmlns:ds="{DS}"><ds:SignedInfo>'
        f'<ds:CanonicalizationMethod Algorithm="{C14N}"/>'
        f'<ds:SignatureMethod Algorithm="{policy.signature_method}"/>'
        f'<ds:Reference URI=""><ds:Transforms><ds:Transform Algorithm="{ENVELOPED}"/>'
        f'</ds:Transforms><ds:DigestMethod Algorithm="{policy.digest_method}"/>'
        "<ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/>"
        "<ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature>\n"
    )
    return DOC.replace(b"</ceb:CEB311Message>", signature.encode() + b"</ceb:CEB311Message>")


@needs_xmlsec1
@pytest.mark.parametrize(("kind", "policy"), POLICIES)
@pytest.mark.parametrize("engine", ["signxml", "lean"])
def test_we_verify_xmlsec1(identities, tmp_path: Path, kind: str, policy, engine: str) -> None:
    key, key_path, cert_path = identities[kind]
    (tmp_path / "template.xml").write_bytes(_template(policy))
    result = _xmlsec1(
        "--sign", "--privkey-pem", f"{key_path},{cert_path}",
        "--output", tmp_path / "out.xml", tmp_path / "template.xml",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    data = (tmp_path / "out.xml").read_bytes()
    verified = verify_enveloped(etree.fromstring(data), _trust(key), policy, engine=engine)
    assert verified.certificate == key.certificate
    with pytest.raises(SignatureError) as info:
        verify_enveloped(
            etree.fromstring(data.replace(b"1000.00", b"9000.00")), _trust(key), policy,
            engine=engine,
        )  # fmt: skip
    assert info.value.code == "signature.digest_mismatch"
