"""Two refusals T4 needed that signing/ lacked: revoked certificates (a revoked-serials list
the TrustStore checks) and a comment splitting a signed text value.

Revocation: a trusted certificate whose serial is listed is refused as signature.revoked,
whether it is an anchor itself, issued by a trusted CA, or that CA; an impostor that merely
copies a revoked serial is still untrusted. The list is a file, one hex serial a line.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree

from signing import SignatureError, SigningKey, TrustStore, sign_enveloped, verify_enveloped
from signing.keys import build_self_signed, load_revoked_serials, parse_serial, signing_key_from

NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
DOC = (
    b'<ceb:CEB622Message xmlns:ceb="http://www.chinaport.gov.cn/ceb" guid="G" version="1.0">'
    b"<ceb:InventoryReturn><ceb:returnStatus>100</ceb:returnStatus>"
    b"<ceb:returnInfo>rejected</ceb:returnInfo></ceb:InventoryReturn></ceb:CEB622Message>"
)


Ca = tuple[rsa.RSAPrivateKey, x509.Certificate]


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


@pytest.fixture(scope="module")
def ca() -> Ca:
    key = _rsa()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Revocation CA (TEST)"))
        .issuer_name(_name("Revocation CA (TEST)"))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _issued(
    ca: tuple[rsa.RSAPrivateKey, x509.Certificate], serial: int | None = None
) -> SigningKey:
    key = _rsa()
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("Signer (TEST)"))
        .issuer_name(ca[1].subject)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=1))
        .not_valid_after(NOW + dt.timedelta(days=30))
        .sign(ca[0], hashes.SHA256())
    )
    return signing_key_from(key, cert, "signer")


def _self_signed(serial_of: x509.Certificate | None = None) -> SigningKey:
    key = _rsa()
    cert = build_self_signed(
        "Self (TEST)", key, NOW - dt.timedelta(days=1), NOW + dt.timedelta(days=30)
    )
    if serial_of is not None:  # rebuild with a chosen serial
        cert = (
            x509.CertificateBuilder()
            .subject_name(cert.subject)
            .issuer_name(cert.issuer)
            .public_key(key.public_key())
            .serial_number(serial_of.serial_number)
            .not_valid_before(cert.not_valid_before_utc)
            .not_valid_after(cert.not_valid_after_utc)
            .sign(key, hashes.SHA256())
        )
    return signing_key_from(key, cert, "self")


def _code(cert: x509.Certificate, store: TrustStore) -> str:
    try:
        store.is_trusted(cert, NOW)
    except SignatureError as exc:
        return exc.code
    return "trusted"


def test_parse_serial_accepts_the_usual_spellings() -> None:
    assert parse_serial("0a1b") == parse_serial("0x0A1B") == parse_serial("0A:1B") == 0x0A1B
    for bad in ("", "xyz", "12 34"):
        with pytest.raises(ValueError):
            parse_serial(bad)


def test_revoked_serials_file_with_comments_and_a_bad_line(tmp_path: Path) -> None:
    good = tmp_path / "revoked.txt"
    good.write_text("# revoked by customs, 2026-11\n0a1b  # lost key card\n\n0x0C:0D\n")
    assert load_revoked_serials(good) == frozenset({0x0A1B, 0x0C0D})
    bad = tmp_path / "typo.txt"
    bad.write_text("0a1b\n0a1g\n")
    with pytest.raises(ValueError, match=r"typo\.txt:2"):
        load_revoked_serials(bad)


def test_a_revoked_anchor_an_issued_certificate_and_a_ca_are_refused(ca: Ca) -> None:
    anchor, issued, other = _self_signed(), _issued(ca), _issued(ca)
    anchors = [anchor.certificate, ca[1]]
    assert _code(anchor.certificate, TrustStore(anchors)) == "trusted"
    assert _code(issued.certificate, TrustStore(anchors)) == "trusted"
    revoked = [anchor.certificate.serial_number, issued.certificate.serial_number]
    store = TrustStore(anchors, revoked_serials=revoked)
    assert _code(anchor.certificate, store) == "signature.revoked"
    assert _code(issued.certificate, store) == "signature.revoked"
    assert _code(other.certificate, store) == "trusted"
    ca_revoked = TrustStore(anchors, revoked_serials=[ca[1].serial_number])
    assert _code(other.certificate, ca_revoked) == "signature.revoked"


def test_an_impostor_with_a_revoked_serial_is_untrusted_not_revoked(ca: Ca) -> None:
    """Revocation is told only of genuine certificates: the serial alone proves nothing."""
    issued = _issued(ca)
    impostor = _self_signed(serial_of=issued.certificate)
    store = TrustStore([ca[1]], revoked_serials=[issued.certificate.serial_number])
    assert _code(impostor.certificate, store) == "signature.untrusted"


def test_from_pem_files_loads_the_revocation_list_and_verify_refuses(
    ca: Ca, tmp_path: Path
) -> None:
    signer = _issued(ca)
    pem = tmp_path / "ca.pem"
    pem.write_bytes(ca[1].public_bytes(serialization.Encoding.PEM))
    listed = tmp_path / "revoked.txt"
    listed.write_text(f"{signer.key_name}\n")
    root = sign_enveloped(etree.fromstring(DOC), signer)
    assert (
        verify_enveloped(root, TrustStore.from_pem_files([pem])).certificate == signer.certificate
    )
    store = TrustStore.from_pem_files([pem], revoked=listed)
    assert store.revoked_serials == frozenset({signer.certificate.serial_number})
    with pytest.raises(SignatureError) as info:
        verify_enveloped(root, store)
    assert info.value.code == "signature.revoked"


@pytest.mark.parametrize(
    ("before", "after", "code"),
    [
        (b"<ceb:returnStatus>100<", b"<ceb:returnStatus>1<!---->00<", "signature.wrapping"),
        (b"<ceb:returnStatus>100<", b"<ceb:returnStatus><!--x-->100<", "signature.wrapping"),
        (b"<ceb:returnStatus>100<", b"<ceb:returnStatus>100<!--x--><", "signature.wrapping"),
        (b"<ceb:returnStatus>100<", b"<ceb:returnStatus>1<?pi x?>00<", "signature.wrapping"),
        (b"<ceb:returnInfo>", b"<!-- between elements --><ceb:returnInfo>", None),
        (b"<ceb:returnStatus>100<", b"<ceb:returnStatus>100<", None),
    ],
    ids=["splits", "leads", "trails", "pi_splits", "between_elements", "none"],
)
def test_a_comment_inside_a_signed_text_is_refused(
    ca: Ca, before: bytes, after: bytes, code: str | None
) -> None:
    """C14N drops comments, so the digest holds: the text a reader stops at is not what was
    signed. Comments between elements hide nothing and are not in the verified root."""
    signer = _issued(ca)
    signed = etree.tostring(sign_enveloped(etree.fromstring(DOC), signer))
    root = etree.fromstring(signed.replace(before, after))
    if code is None:
        verified = verify_enveloped(root, TrustStore([ca[1]]))
        assert verified.root.findtext(".//{*}returnStatus") == "100"
        assert not verified.root.xpath("//comment()")
        return
    with pytest.raises(SignatureError) as info:
        verify_enveloped(root, TrustStore([ca[1]]))
    assert info.value.code == code
