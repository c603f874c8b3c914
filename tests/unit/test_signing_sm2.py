"""SM2 with SM3 (the chinaport 2022/04 method): primitives, identities, sign/verify, OpenSSL."""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import etree

from signing import (
    RSA_SHA256,
    SM2_SM3,
    SignatureError,
    TrustStore,
    default_policy_for_key_type,
    generate_test_identity,
    load_signing_key,
    policy_by_name,
    sign_enveloped,
    sm2,
    verify_enveloped,
)
from signing.policy import SM2_SM3_URI, SM3
from signing.policy import SignaturePolicy as Policy

DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"ds": DS}
SHARED = Path(__file__).parents[2].parent / "shared"
OPENSSL = shutil.which("openssl")
DOC = (
    b'<ceb:CEB311Message xmlns:ceb="http://www.chinaport.gov.cn/ceb" guid="S-1" version="1.0">'
    b"<ceb:Order><ceb:OrderHead><ceb:ebpName>\xe6\xb5\xb7\xe5\x8d\x97</ceb:ebpName>"
    b"<ceb:goodsValue>88.00</ceb:goodsValue></ceb:OrderHead></ceb:Order>"
    b"<ceb:BaseTransfer><ceb:copCode>46121601BC</ceb:copCode></ceb:BaseTransfer>"
    b"</ceb:CEB311Message>"
)


def _openssl_has_sm2() -> bool:
    if OPENSSL is None:
        return False
    done = subprocess.run(
        [OPENSSL, "ecparam", "-list_curves"], capture_output=True, text=True, check=False
    )
    return "SM2" in done.stdout


needs_openssl_sm2 = pytest.mark.skipif(not _openssl_has_sm2(), reason="openssl without SM2")


@pytest.fixture(scope="module")
def sm2_identity(tmp_path_factory: pytest.TempPathFactory):
    tmp = tmp_path_factory.mktemp("sm2")
    key_path, cert_path = tmp / "sm2.key", tmp / "sm2.pem"
    generate_test_identity("SM2 Broker", key_path, cert_path, key_type="sm2", days=30)
    return load_signing_key(key_path, cert_path), key_path, cert_path


def _signed(key, policy=SM2_SM3, doc: bytes = DOC) -> bytes:
    return etree.tostring(sign_enveloped(etree.fromstring(doc), key, policy))


# --------------------------------------------------------------------------- primitives


def test_sm3_standard_vector() -> None:
    assert sm2.sm3(b"abc").hex() == (
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
    )


def test_sm2_sign_verify_with_standard_user_id() -> None:
    key = sm2.SM2PrivateKey.generate()
    signature = key.sign(b"message")
    assert len(signature) == 64
    assert key.public_key().verify(signature, b"message")
    assert key.public_key().verify(signature, b"message", sm2.DEFAULT_USER_ID)
    assert not key.public_key().verify(signature, b"other")
    assert not key.public_key().verify(signature, b"message", b"another user id")
    der = sm2.encode_signature_value(signature, "der")
    assert sm2.decode_signature_value(der) == signature
    with pytest.raises(sm2.SM2Error):
        sm2.decode_signature_value(b"\x30" * 40)
    assert "SM2PrivateKey(" in repr(key) and str(key._d) not in repr(key)


@needs_openssl_sm2
def test_sm2_interop_with_openssl(tmp_path: Path) -> None:
    """OpenSSL 3 (SM2 with SM3, distid 1234567812345678) and gmalg agree both ways."""
    key = sm2.SM2PrivateKey.generate()
    (tmp_path / "k.pem").write_bytes(key.pkcs8_pem())
    (tmp_path / "m").write_bytes(b"abc")
    common = ["-rawin", "-digest", "sm3", "-pkeyopt", "distid:1234567812345678"]
    subprocess.run(
        [OPENSSL, "pkeyutl", "-sign", "-inkey", tmp_path / "k.pem", "-in", tmp_path / "m",
         "-out", tmp_path / "sig", *common],
        check=True, capture_output=True,
    )  # fmt: skip
    theirs = sm2.decode_signature_value((tmp_path / "sig").read_bytes())
    assert key.public_key().verify(theirs, b"abc")
    (tmp_path / "ours").write_bytes(sm2.encode_signature_value(key.sign(b"abc"), "der"))
    done = subprocess.run(
        [OPENSSL, "pkeyutl", "-verify", "-inkey", tmp_path / "k.pem", "-in", tmp_path / "m",
         "-sigfile", tmp_path / "ours", *common],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


@needs_openssl_sm2
def test_openssl_sm2_certificate_and_key_load(tmp_path: Path) -> None:
    """An SM2 identity made by OpenSSL loads, signs, and verifies; its cert checks out."""
    key_path, cert_path = tmp_path / "o.key", tmp_path / "o.pem"
    subprocess.run(
        [OPENSSL, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:SM2",
         "-out", key_path], check=True, capture_output=True,
    )  # fmt: skip
    subprocess.run(
        [OPENSSL, "req", "-new", "-x509", "-key", key_path, "-sm3", "-sigopt",
         "distid:1234567812345678", "-subj", "/CN=OpenSSL SM2", "-days", "5", "-out", cert_path],
        check=True, capture_output=True,
    )  # fmt: skip
    key = load_signing_key(key_path, cert_path)
    assert key.key_type == "sm2"
    assert sm2.certificate_signed_by(key.certificate, sm2.sm2_public_key(key.certificate))
    result = verify_enveloped(
        etree.fromstring(_signed(key)), TrustStore([key.certificate]), SM2_SM3
    )
    assert result.signature_method == SM2_SM3_URI
    done = subprocess.run(
        [OPENSSL, "verify", "-CAfile", cert_path, cert_path], capture_output=True, check=False
    )
    assert done.returncode == 0


# --------------------------------------------------------------------------- XML-DSig


def test_sm2_round_trip(sm2_identity) -> None:
    key, _, cert_path = sm2_identity
    assert key.key_type == "sm2" and sm2.is_sm2_certificate(key.certificate)
    data = _signed(key)
    root = etree.fromstring(data)
    assert root.find(".//ds:SignatureMethod", NS).get("Algorithm") == SM2_SM3_URI
    assert root.find(".//ds:DigestMethod", NS).get("Algorithm") == SM3
    value = base64.b64decode(root.findtext(".//ds:SignatureValue", namespaces=NS))
    assert len(value) == 64  # raw r||s
    trust = TrustStore.from_pem_files([cert_path])
    result = verify_enveloped(root, trust, SM2_SM3)
    assert result.certificate == key.certificate
    assert result.root.findtext(".//{*}ebpName") == "海南"
    assert result.root.find(f".//{{{DS}}}Signature") is None


def test_sm2_der_signature_value_is_accepted(sm2_identity) -> None:
    key = sm2_identity[0]
    der_policy = Policy(**{**SM2_SM3.__dict__, "sm2_signature_encoding": "der"})
    root = etree.fromstring(_signed(key, der_policy))
    assert len(base64.b64decode(root.findtext(".//ds:SignatureValue", namespaces=NS))) != 64
    verify_enveloped(root, TrustStore([key.certificate]), SM2_SM3)


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda d: d.replace(b"88.00", b"98.00"), "signature.digest_mismatch"),
        (lambda d: d.replace(b"<ds:DigestValue>", b"<ds:DigestValue>AAAA"), "signature.invalid"),
    ],
)
def test_sm2_tampering(sm2_identity, mutate, code: str) -> None:
    key = sm2_identity[0]
    with pytest.raises(SignatureError) as info:
        verify_enveloped(etree.fromstring(mutate(_signed(key))), TrustStore([key.certificate]),
                         SM2_SM3)  # fmt: skip
    assert info.value.code == code


def test_sm2_policy_mismatches(sm2_identity, tmp_path: Path) -> None:
    key = sm2_identity[0]
    with pytest.raises(SignatureError) as info:
        sign_enveloped(etree.fromstring(DOC), key, RSA_SHA256)
    assert info.value.code == "signature.key_mismatch"
    generate_test_identity("RSA", tmp_path / "r.key", tmp_path / "r.pem")
    rsa_key = load_signing_key(tmp_path / "r.key", tmp_path / "r.pem")
    with pytest.raises(SignatureError) as info:
        sign_enveloped(etree.fromstring(DOC), rsa_key, SM2_SM3)
    assert info.value.code == "signature.key_mismatch"
    # An SM2 signature under a policy that does not allow it.
    with pytest.raises(SignatureError) as info:
        verify_enveloped(etree.fromstring(_signed(key)), TrustStore([key.certificate]))
    assert info.value.code == "signature.algorithm"


def test_sm2_untrusted_and_unregistered(sm2_identity, tmp_path: Path) -> None:
    key = sm2_identity[0]
    generate_test_identity("Other", tmp_path / "o.key", tmp_path / "o.pem", key_type="sm2")
    other = load_signing_key(tmp_path / "o.key", tmp_path / "o.pem")
    root = etree.fromstring(_signed(key))
    with pytest.raises(SignatureError) as info:
        verify_enveloped(root, TrustStore([other.certificate]), SM2_SM3)
    assert info.value.code == "signature.untrusted"
    both = TrustStore([key.certificate, other.certificate])
    verify_enveloped(root, both, SM2_SM3, registered_keys=[key.certificate])
    with pytest.raises(SignatureError) as info:
        verify_enveloped(root, both, SM2_SM3, registered_keys=[other.certificate])
    assert info.value.code == "signature.unregistered"


def test_generate_test_identity_key_types(tmp_path: Path) -> None:
    for key_type in ("rsa", "ec", "sm2"):
        key_path, cert_path = tmp_path / f"{key_type}.key", tmp_path / f"{key_type}.pem"
        generate_test_identity(key_type, key_path, cert_path, key_type=key_type)
        key = load_signing_key(key_path, cert_path)
        assert key.key_type == key_type
        policy = default_policy_for_key_type(key_type)
        verify_enveloped(etree.fromstring(_signed(key, policy)), TrustStore([key.certificate]),
                         policy)  # fmt: skip
    with pytest.raises(ValueError, match="unknown key type"):
        generate_test_identity("x", tmp_path / "x.key", tmp_path / "x.pem", key_type="dsa")
    assert policy_by_name("SM2_SM3") is SM2_SM3


def test_official_sample_is_still_key_mismatch_under_sm2_policy() -> None:
    path = SHARED / "ceb-official" / "samples202205" / "CEB621Message.xml"
    if not path.exists():
        pytest.skip("../shared (official samples) is not present")
    with pytest.raises(SignatureError) as info:
        verify_enveloped(etree.fromstring(path.read_bytes()), TrustStore(), SM2_SM3)
    assert info.value.code == "signature.key_mismatch"
    assert "sm2-sm3" in str(info.value) and "RSA-1024" in str(info.value)
