"""Unit tests for the signing edge library: round trips, tampering, wrapping, samples, interop."""

from __future__ import annotations

import base64
import datetime as dt
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from signing import (
    ECDSA_SHA256,
    RSA_SHA1_LEGACY,
    RSA_SHA256,
    SignatureError,
    SigningKey,
    TrustStore,
    generate_test_identity,
    load_signing_key,
    policy_by_name,
    remove_signature,
    sign_enveloped,
    verify_enveloped,
)
from signing.keys import TEST_KEY_BANNER, build_self_signed, serial_hex

SHARED = Path(__file__).parents[2].parent / "shared"
DS = "http://www.w3.org/2000/09/xmldsig#"
CEB = "http://www.chinaport.gov.cn/ceb"
NS = {"ds": DS, "ceb": CEB}
XMLSEC1 = shutil.which("xmlsec1")
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)

DOC = """<?xml version="1.0" encoding="UTF-8"?>
<ceb:CEB621Message xmlns:ceb="http://www.chinaport.gov.cn/ceb"
    guid="4CDE1CFD-EDED-46B1-946C-B8022E42FC94" version="1.0">
    <ceb:Inventory>
        <ceb:InventoryHead>
            <ceb:guid>4CDE1CFD-EDED-46B1-946C-B8022E42FC94</ceb:guid>
            <ceb:appType>1</ceb:appType>
            <ceb:ebpName>海南星创互联网医药有限公司</ceb:ebpName>
            <ceb:orderNo>order-1 &amp; co</ceb:orderNo>
        </ceb:InventoryHead>
        <ceb:InventoryList>
            <ceb:gnum>1</ceb:gnum>
            <ceb:totalPrice>1000.00</ceb:totalPrice>
        </ceb:InventoryList>
    </ceb:Inventory>
    <ceb:BaseTransfer>
        <ceb:copCode>46121601BC</ceb:copCode>
        <ceb:dxpMode>DXP</ceb:dxpMode>
    </ceb:BaseTransfer>
</ceb:CEB621Message>
""".encode()


# --------------------------------------------------------------------------- helpers


@dataclass(frozen=True)
class Identity:
    """A signing key plus the PEM files it came from (for xmlsec1)."""

    key: SigningKey
    key_path: Path
    cert_path: Path


def _write_identity(
    directory: Path,
    name: str,
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey,
    cert: x509.Certificate,
) -> Identity:
    """Persist a key/cert pair and load it back through the public loader."""
    key_path, cert_path = directory / f"{name}.key", directory / f"{name}.pem"
    key_path.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return Identity(load_signing_key(key_path, cert_path), key_path, cert_path)


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _self_signed(
    directory: Path,
    name: str,
    *,
    days_from: int = -1,
    days_to: int = 365,
    private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | None = None,
) -> Identity:
    """A self-signed identity with a chosen validity window (relative to now, in days)."""
    private_key = private_key or _rsa()
    cert = build_self_signed(
        name, private_key, NOW + dt.timedelta(days=days_from), NOW + dt.timedelta(days=days_to)
    )
    return _write_identity(directory, name, private_key, cert)


def _ca(name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A CA certificate that may issue signer certificates."""
    private_key = _rsa()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(private_key, hashes.SHA256())
    )
    return private_key, cert


def _issued(
    directory: Path, name: str, ca_key: rsa.RSAPrivateKey, ca_cert: x509.Certificate
) -> Identity:
    """A signer certificate issued by the given CA."""
    private_key = _rsa()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return _write_identity(directory, name, private_key, cert)


def _doc() -> etree._Element:
    return etree.fromstring(DOC)


def _signed_bytes(key: SigningKey, policy=RSA_SHA256, doc: bytes = DOC) -> bytes:
    """Sign and serialize, as the gateway does before sending."""
    root = sign_enveloped(etree.fromstring(doc), key, policy)
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def _reparse(data: bytes | str) -> etree._Element:
    return etree.fromstring(data.encode() if isinstance(data, str) else data)


def _expect(
    code: str, root: etree._Element, trust: TrustStore, policy=RSA_SHA256, **kwargs
) -> SignatureError:
    """Verification must fail with exactly this code and a non-empty reason."""
    with pytest.raises(SignatureError) as info:
        verify_enveloped(root, trust, policy, **kwargs)
    assert info.value.code == code, f"{info.value.code}: {info.value}"
    assert str(info.value)
    return info.value


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def keydir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("keys")


@pytest.fixture(scope="module")
def alice(keydir: Path) -> Identity:
    generate_test_identity("Alice Broker", keydir / "alice.key", keydir / "alice.pem")
    return Identity(
        load_signing_key(keydir / "alice.key", keydir / "alice.pem"),
        keydir / "alice.key",
        keydir / "alice.pem",
    )


@pytest.fixture(scope="module")
def bob(keydir: Path) -> Identity:
    return _self_signed(keydir, "Bob Platform")


@pytest.fixture(scope="module")
def mallory(keydir: Path) -> Identity:
    return _self_signed(keydir, "Mallory")


@pytest.fixture(scope="module")
def carol_ec(keydir: Path) -> Identity:
    return _self_signed(keydir, "Carol EC", private_key=ec.generate_private_key(ec.SECP256R1()))


@pytest.fixture(scope="module")
def trust(alice: Identity, bob: Identity, carol_ec: Identity) -> TrustStore:
    return TrustStore.from_pem_files([alice.cert_path, bob.cert_path, carol_ec.cert_path])


@pytest.fixture(scope="module")
def signed(alice: Identity) -> bytes:
    return _signed_bytes(alice.key)


# --------------------------------------------------------------------------- round trip


def test_round_trip(signed: bytes, trust: TrustStore, alice: Identity) -> None:
    root = _reparse(signed)
    assert root[-1].tag == f"{{{DS}}}Signature"
    assert root.findtext("ds:Signature/ds:KeyInfo/ds:KeyName", namespaces=NS) == alice.key.key_name
    result = verify_enveloped(root, trust)
    assert result.certificate == alice.key.certificate
    assert result.key_name == serial_hex(alice.key.certificate) == alice.key.key_name
    assert result.signature_method == RSA_SHA256.signature_method
    assert result.root.find(".//ds:Signature", NS) is None
    assert result.root.findtext(".//ceb:ebpName", namespaces=NS) == "海南星创互联网医药有限公司"
    assert result.root is not root


def test_verify_does_not_modify_input(signed: bytes, trust: TrustStore) -> None:
    root = _reparse(signed)
    before = etree.tostring(root)
    verify_enveloped(root, trust)
    assert etree.tostring(root) == before


def test_round_trip_in_memory_and_pretty_printed(alice: Identity, trust: TrustStore) -> None:
    root = sign_enveloped(_doc(), alice.key)
    verify_enveloped(root, trust)  # same tree, not serialized
    verify_enveloped(_reparse(etree.tostring(root, encoding="UTF-8")), trust)


def test_verified_root_is_what_was_digested(signed: bytes, trust: TrustStore) -> None:
    """Comments are outside the digest, so they must not be able to truncate a value we read:
    one that splits a text is refused (the stored message would read "1" to a naive reader),
    one between elements is harmless and absent from the verified root."""
    tampered = signed.replace(b"1000.00</ceb:totalPrice>", b"1<!-- -->000.00</ceb:totalPrice>")
    root = _reparse(tampered)
    assert root.findtext(".//ceb:totalPrice", namespaces=NS) == "1"  # the naive view
    _expect("signature.wrapping", root, trust)
    between = signed.replace(b"<ceb:gnum>", b"<!-- line 1 --><ceb:gnum>")
    result = verify_enveloped(_reparse(between), trust)
    assert result.root.findtext(".//ceb:totalPrice", namespaces=NS) == "1000.00"
    assert not result.root.xpath("//comment()")


def test_official_style_namespaces_and_xml_lang(alice: Identity, trust: TrustStore) -> None:
    doc = (
        b'<?xml-stylesheet href="x"?><CEB311Message xmlns="http://www.chinaport.gov.cn/ceb" '
        b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xml:lang="zh"><Order>1</Order>'
        b"</CEB311Message>"
    )
    verify_enveloped(_reparse(_signed_bytes(alice.key, doc=doc)), trust)


def test_ecdsa_round_trip(carol_ec: Identity, trust: TrustStore) -> None:
    root = _reparse(_signed_bytes(carol_ec.key, ECDSA_SHA256))
    value = root.findtext("ds:Signature/ds:SignatureValue", namespaces=NS)
    assert len(base64.b64decode(value)) == 64  # raw r||s, not DER
    assert verify_enveloped(root, trust).signature_method.endswith("ecdsa-sha256")


def test_ca_issued_certificate_is_trusted(keydir: Path) -> None:
    ca_key, ca_cert = _ca("Test CA")
    leaf = _issued(keydir, "Issued Signer", ca_key, ca_cert)
    root = _reparse(_signed_bytes(leaf.key))
    verify_enveloped(root, TrustStore([ca_cert]))
    # Same CA name, different key: the issuer name alone must not be enough.
    _, impostor = _ca("Test CA")
    _expect("signature.untrusted", root, TrustStore([impostor]))


# --------------------------------------------------------------------------- tampering


def test_tampered_body_is_digest_mismatch(signed: bytes, trust: TrustStore) -> None:
    tampered = signed.replace(b"1000.00", b"1000.01")
    assert tampered != signed
    _expect("signature.digest_mismatch", _reparse(tampered), trust)


def test_tampered_root_attribute_is_digest_mismatch(signed: bytes, trust: TrustStore) -> None:
    root = _reparse(signed)
    root.set("version", "2.0")
    _expect("signature.digest_mismatch", root, trust)


def test_tampered_signed_info_is_invalid(signed: bytes, trust: TrustStore) -> None:
    root = _reparse(signed)
    node = root.find(".//ds:DigestValue", NS)
    node.text = ("A" if node.text[0] != "A" else "B") + node.text[1:]
    _expect("signature.invalid", root, trust)


def test_swapped_certificate_is_invalid(signed: bytes, trust: TrustStore, bob: Identity) -> None:
    root = _reparse(signed)
    root.find(".//ds:X509Certificate", NS).text = bob.key.cert_b64
    _expect("signature.invalid", root, trust)


def test_untrusted_certificate(mallory: Identity, trust: TrustStore) -> None:
    error = _expect("signature.untrusted", _reparse(_signed_bytes(mallory.key)), trust)
    assert "Mallory" in str(error)


def test_expired_certificate(keydir: Path) -> None:
    old = _self_signed(keydir, "Expired Broker", days_from=-400, days_to=-30)
    store = TrustStore([old.key.certificate])
    root = _reparse(_signed_bytes(old.key))
    _expect("signature.expired", root, store)
    verify_enveloped(root, store, at=NOW - dt.timedelta(days=100))  # fine back then


def test_not_yet_valid_certificate(keydir: Path) -> None:
    early = _self_signed(keydir, "Future Broker", days_from=10, days_to=400)
    _expect(
        "signature.expired", _reparse(_signed_bytes(early.key)), TrustStore([early.key.certificate])
    )


# --------------------------------------------------------------------------- wrapping


def _signature(root: etree._Element) -> etree._Element:
    return root.find("ds:Signature", NS)


def test_missing_signature(trust: TrustStore) -> None:
    _expect("signature.missing", _doc(), trust)


def test_second_signature_is_wrapping(signed: bytes, trust: TrustStore) -> None:
    root = _reparse(signed)
    root.find(".//ceb:InventoryHead", NS).append(etree.fromstring(etree.tostring(_signature(root))))
    _expect("signature.wrapping", root, trust)


def test_two_trailing_signatures_are_wrapping(signed: bytes, trust: TrustStore) -> None:
    root = _reparse(signed)
    root.append(etree.fromstring(etree.tostring(_signature(root))))
    _expect("signature.wrapping", root, trust)


def test_signature_not_last_is_wrapping(signed: bytes, trust: TrustStore) -> None:
    root = _reparse(signed)
    root.append(etree.Element(f"{{{CEB}}}Extra"))
    _expect("signature.wrapping", root, trust)


def test_signature_nested_is_wrapping(signed: bytes, trust: TrustStore) -> None:
    root = _reparse(signed)
    root.find("ceb:BaseTransfer", NS).append(_signature(root))
    _expect("signature.wrapping", root, trust)


@pytest.mark.parametrize("uri", ["#x", "#xpointer(/)", "http://example.com/doc.xml", None])
def test_reference_uri_must_be_empty(signed: bytes, trust: TrustStore, uri: str | None) -> None:
    root = _reparse(signed)
    reference = root.find(".//ds:Reference", NS)
    if uri is None:
        del reference.attrib["URI"]
    else:
        reference.set("URI", uri)
    _expect("signature.wrapping", root, trust)


def test_two_references_are_wrapping(signed: bytes, trust: TrustStore) -> None:
    root = _reparse(signed)
    reference = root.find(".//ds:Reference", NS)
    reference.addnext(etree.fromstring(etree.tostring(reference)))
    _expect("signature.wrapping", root, trust)


def test_unexpected_transform_is_wrapping(signed: bytes, trust: TrustStore) -> None:
    root = _reparse(signed)
    transforms = root.find(".//ds:Transforms", NS)
    extra = etree.SubElement(transforms, f"{{{DS}}}Transform")
    extra.set("Algorithm", "http://www.w3.org/TR/1999/REC-xpath-19991116")
    etree.SubElement(extra, f"{{{DS}}}XPath").text = "not(ancestor-or-self::ceb:Inventory)"
    _expect("signature.wrapping", root, trust)


def test_missing_enveloped_transform_is_wrapping(signed: bytes, trust: TrustStore) -> None:
    root = _reparse(signed)
    transforms = root.find(".//ds:Transforms", NS)
    transforms.getparent().remove(transforms)
    _expect("signature.wrapping", root, trust)


def test_object_is_wrapping(signed: bytes, trust: TrustStore) -> None:
    root = _reparse(signed)
    etree.SubElement(_signature(root), f"{{{DS}}}Object").append(
        etree.Element(f"{{{CEB}}}Inventory")
    )
    _expect("signature.wrapping", root, trust)


def test_bad_base64_is_malformed(signed: bytes, trust: TrustStore) -> None:
    root = _reparse(signed)
    root.find(".//ds:SignatureValue", NS).text = "not base64!"
    _expect("signature.malformed", root, trust)


def test_missing_signed_info_is_malformed(signed: bytes, trust: TrustStore) -> None:
    root = _reparse(signed)
    signature = _signature(root)
    signature.remove(signature.find("ds:SignedInfo", NS))
    _expect("signature.malformed", root, trust)


@pytest.mark.parametrize("element", ["X509Data", "KeyInfo"])
def test_missing_certificate(signed: bytes, trust: TrustStore, element: str) -> None:
    root = _reparse(signed)
    node = root.find(f".//ds:{element}", NS)
    node.getparent().remove(node)
    _expect("signature.certificate", root, trust)


# --------------------------------------------------------------------------- algorithms


def test_rsa_sha1_only_under_legacy_policy(alice: Identity, trust: TrustStore) -> None:
    root = _reparse(_signed_bytes(alice.key, RSA_SHA1_LEGACY))
    _expect("signature.algorithm", root, trust, RSA_SHA256)
    result = verify_enveloped(root, trust, RSA_SHA1_LEGACY)
    assert result.signature_method == "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
    _expect("signature.algorithm", _reparse(_signed_bytes(alice.key)), trust, RSA_SHA1_LEGACY)


def test_unknown_canonicalization_is_algorithm(signed: bytes, trust: TrustStore) -> None:
    root = _reparse(signed)
    root.find(".//ds:CanonicalizationMethod", NS).set(
        "Algorithm", "http://www.w3.org/2006/12/xml-c14n11"
    )
    _expect("signature.algorithm", root, trust)


def test_ecdsa_method_with_rsa_certificate_is_key_mismatch(
    signed: bytes, trust: TrustStore
) -> None:
    root = _reparse(signed)
    root.find(".//ds:SignatureMethod", NS).set("Algorithm", ECDSA_SHA256.signature_method)
    _expect("signature.key_mismatch", root, trust)


def test_signing_with_wrong_key_type_is_key_mismatch(carol_ec: Identity) -> None:
    with pytest.raises(SignatureError) as info:
        sign_enveloped(_doc(), carol_ec.key, RSA_SHA256)
    assert info.value.code == "signature.key_mismatch"


def test_policy_by_name() -> None:
    assert policy_by_name("rsa-sha256") is RSA_SHA256
    assert policy_by_name("RSA_SHA1_LEGACY") is RSA_SHA1_LEGACY
    with pytest.raises(ValueError, match="unknown signature policy"):
        policy_by_name("md5")


# --------------------------------------------------------------------------- samples


@pytest.fixture(scope="module")
def shared() -> Path:
    if not SHARED.is_dir():
        pytest.skip("../shared (official and public samples) is not present")
    return SHARED


def test_official_sm2_sample_reports_key_mismatch(shared: Path) -> None:
    data = (shared / "ceb-official" / "samples202205" / "CEB621Message.xml").read_bytes()
    error = _expect("signature.key_mismatch", etree.fromstring(data), TrustStore())
    assert "sm2-sm3" in str(error)
    assert "RSA-1024" in str(error)


def test_public_sample_is_unverifiable(shared: Path, trust: TrustStore) -> None:
    data = (shared / "samples" / "public" / "CEB621Message_signed.xml").read_bytes()
    root = etree.fromstring(data)
    for policy in (RSA_SHA256, RSA_SHA1_LEGACY):
        with pytest.raises(SignatureError) as info:
            verify_enveloped(root, trust, policy)
        assert info.value.code in {"signature.certificate", "signature.algorithm"}
        assert str(info.value)


# --------------------------------------------------------------------------- re-signing


def test_resigning_a_signed_document_raises(signed: bytes, alice: Identity) -> None:
    with pytest.raises(SignatureError) as info:
        sign_enveloped(_reparse(signed), alice.key)
    assert info.value.code == "signature.malformed"


def test_remove_signature_restores_document(
    alice: Identity, bob: Identity, trust: TrustStore
) -> None:
    root = _doc()
    original = etree.tostring(root)
    sign_enveloped(root, alice.key)
    removed = remove_signature(root)
    assert removed is not None and removed.tag == f"{{{DS}}}Signature"
    assert etree.tostring(root) == original
    assert remove_signature(root) is None
    sign_enveloped(root, bob.key)
    assert verify_enveloped(_reparse(etree.tostring(root)), trust).key_name == bob.key.key_name


def test_remove_signature_keeps_trailing_text(signed: bytes) -> None:
    root = _reparse(signed.replace(b"</ds:Signature>", b"</ds:Signature>\n"))
    remove_signature(root)
    assert root[-1].tail.endswith("\n")


# --------------------------------------------------------------------------- keys


def test_generate_test_identity(tmp_path: Path) -> None:
    key_path, cert_path = tmp_path / "k.pem", tmp_path / "c.pem"
    generate_test_identity("Sandbox Customs", key_path, cert_path, days=30)
    assert key_path.read_bytes().startswith(TEST_KEY_BANNER)
    assert stat.S_IMODE(os.stat(key_path).st_mode) == 0o600
    key = load_signing_key(key_path, cert_path)
    assert isinstance(key.private_key, rsa.RSAPrivateKey) and key.private_key.key_size == 2048
    assert key.key_name == f"{key.certificate.serial_number:x}".rjust(len(key.key_name), "0")
    assert base64.b64decode(key.cert_b64) == key.certificate.public_bytes(
        serialization.Encoding.DER
    )
    with pytest.raises(FileExistsError):
        generate_test_identity("again", key_path, tmp_path / "other.pem")
    assert not (tmp_path / "other.pem").exists()


def test_load_signing_key_rejects_foreign_certificate(alice: Identity, bob: Identity) -> None:
    with pytest.raises(SignatureError) as info:
        load_signing_key(alice.key_path, bob.cert_path)
    assert info.value.code == "signature.key_mismatch"


def test_trust_store_from_directory_skips_keys(alice: Identity, keydir: Path) -> None:
    store = TrustStore.from_directory(keydir)  # *.pem certificates; *.key files ignored
    assert alice.key.certificate in store.certificates
    store.is_trusted(alice.key.certificate, dt.datetime.now(dt.UTC))


def test_error_codes_are_checked() -> None:
    with pytest.raises(ValueError, match="unknown signature error code"):
        SignatureError("signature.nope", "x")


# --------------------------------------------------------------------------- xmlsec1 interop

needs_xmlsec1 = pytest.mark.skipif(XMLSEC1 is None, reason="xmlsec1 is not installed")


def _xmlsec1(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [XMLSEC1, *map(str, args)], capture_output=True, text=True, timeout=60, check=False
    )


@needs_xmlsec1
@pytest.mark.parametrize(
    ("who", "policy", "doc"),
    [
        ("alice", RSA_SHA256, DOC),
        ("alice", RSA_SHA1_LEGACY, DOC),
        ("carol_ec", ECDSA_SHA256, DOC),
        ("alice", RSA_SHA256, b'<a xmlns="urn:x" xmlns:u="urn:u" xml:lang="zh">\n<b>1</b>\n</a>'),
    ],
)
def test_xmlsec1_accepts_our_signature(
    request: pytest.FixtureRequest, tmp_path: Path, who: str, policy, doc: bytes
) -> None:
    identity: Identity = request.getfixturevalue(who)
    path = tmp_path / "signed.xml"
    path.write_bytes(_signed_bytes(identity.key, policy, doc))
    result = _xmlsec1("--verify", "--trusted-pem", identity.cert_path, path)
    assert result.returncode == 0, result.stderr


@needs_xmlsec1
def test_we_accept_xmlsec1_signature(tmp_path: Path, alice: Identity, trust: TrustStore) -> None:
    template = DOC.replace(
        b"</ceb:CEB621Message>",
        b'<ds:Signature xmlns:ds="http://www.w3.org/2000/09/xmldsig#"><ds:SignedInfo>'
        b'<ds:CanonicalizationMethod Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315"/>'
        b'<ds:SignatureMethod Algorithm="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"/>'
        b'<ds:Reference URI=""><ds:Transforms><ds:Transform '
        b'Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/></ds:Transforms>'
        b'<ds:DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/>'
        b"<ds:DigestValue/></ds:Reference></ds:SignedInfo><ds:SignatureValue/>"
        b"<ds:KeyInfo><ds:X509Data/></ds:KeyInfo></ds:Signature>\n</ceb:CEB621Message>",
    )
    (tmp_path / "template.xml").write_bytes(template)
    result = _xmlsec1(
        "--sign",
        "--privkey-pem",
        f"{alice.key_path},{alice.cert_path}",
        "--output",
        tmp_path / "out.xml",
        tmp_path / "template.xml",
    )
    assert result.returncode == 0, result.stderr
    root = etree.fromstring((tmp_path / "out.xml").read_bytes())
    verified = verify_enveloped(root, trust)
    assert verified.certificate == alice.key.certificate
    tampered = (tmp_path / "out.xml").read_bytes().replace(b"1000.00", b"9000.00")
    _expect("signature.digest_mismatch", etree.fromstring(tampered), trust)


def test_a_signature_value_that_is_not_base64_is_malformed_not_a_crash(
    alice: Identity, trust: TrustStore
):
    """Found by fuzzing (T5): signxml validates the Signature against the XML-DSig schema
    and let lxml's DocumentInvalid escape, which a receipt endpoint answered with a 500.
    Our own check decodes the shortened value and finds it does not verify."""
    root = _reparse(_signed_bytes(alice.key))
    value = root.find(".//{http://www.w3.org/2000/09/xmldsig#}SignatureValue")
    assert value is not None and value.text
    value.text = value.text[:80] + value.text[150:]  # 70 characters cut: not xs:base64Binary
    _expect("signature.malformed", root, trust, engine="signxml")
    _expect("signature.invalid", root, trust)


@pytest.mark.parametrize("engine", ["lean", "signxml"])
def test_a_relative_namespace_uri_is_malformed_not_a_crash(
    alice: Identity, trust: TrustStore, engine: str
):
    """Found by fuzzing (T5): lxml refuses to canonicalize a document that declares a
    relative namespace URI, and our own check let its C14NError out (a 500 at the receipt
    endpoint); signxml's was already translated."""
    data = _signed_bytes(alice.key)
    uri = next(u for u in etree.fromstring(data).nsmap.values() if "xmldsig" not in u)
    relative = data.replace(uri.encode(), b"rel/ns")
    assert relative != data
    _expect("signature.malformed", _reparse(relative), trust, engine=engine)


def test_an_embedded_certificate_with_an_unreadable_name_is_refused_not_a_crash(
    alice: Identity, trust: TrustStore
):
    """Found by fuzzing (T5): cryptography reads a certificate's names lazily, so one whose
    issuer does not parse raised ValueError inside the trust check."""
    root = _reparse(_signed_bytes(alice.key))
    element = root.find(".//{http://www.w3.org/2000/09/xmldsig#}X509Certificate")
    assert element is not None and element.text
    der = base64.b64decode("".join(element.text.split()))
    issuer = x509.load_der_x509_certificate(der).issuer.public_bytes()
    at = der.index(issuer)
    # The first byte of the issuer's UTF8String value made a lead byte with no continuation:
    # the certificate loads, its issuer does not (what the fuzzer found).
    tag = next(i for i in range(at, at + len(issuer)) if der[i] == 0x0C)
    broken = der[: tag + 2] + b"\xd1" + der[tag + 3 :]
    element.text = base64.b64encode(broken).decode()
    _expect("signature.certificate", root, trust)


def test_a_canonicalization_method_in_no_namespace_is_refused_not_a_crash(
    alice: Identity, trust: TrustStore
):
    """Found by fuzzing (T5): the right name in no namespace passed the structure check and
    then was not found as ds:CanonicalizationMethod, an AttributeError."""
    root = _reparse(_signed_bytes(alice.key))
    element = root.find(".//{http://www.w3.org/2000/09/xmldsig#}CanonicalizationMethod")
    assert element is not None
    element.tag = "CanonicalizationMethod"
    _expect("signature.malformed", root, trust)
