"""Key providers: PKCS#12 files and PKCS#11 tokens (SoftHSM2 stands in for the USB keys).

Needs Debian's softhsm2 (softhsm2-util and /usr/lib/softhsm/libsofthsm2.so); skips cleanly
without it. Each run uses a private token directory (SOFTHSM2_CONF), never the system one.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from lxml import etree

from signing import (
    ECDSA_SHA256,
    RSA_SHA1_LEGACY,
    RSA_SHA256,
    SignatureError,
    TrustStore,
    sign_enveloped,
    verify_enveloped,
)
from signing.keys import KeyProvider, build_self_signed
from signing.providers import load_pkcs12, open_pkcs11, read_secret

DOC = (
    b'<ceb:CEB621Message xmlns:ceb="http://www.chinaport.gov.cn/ceb" guid="G" version="1.0">'
    b"<ceb:Inventory><ceb:InventoryHead><ceb:ebpName>\xe6\xb5\xb7\xe5\x8d\x97</ceb:ebpName>"
    b"</ceb:InventoryHead></ceb:Inventory><ceb:BaseTransfer><ceb:copCode>46121601BC"
    b"</ceb:copCode></ceb:BaseTransfer></ceb:CEB621Message>"
)
NOW = dt.datetime.now(dt.UTC)
SOFTHSM_LIBS = [
    Path("/usr/lib/softhsm/libsofthsm2.so"),
    Path("/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so"),
    Path("/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so"),
]
XMLSEC1 = shutil.which("xmlsec1")


def _cert(private_key, name: str):
    return build_self_signed(
        name, private_key, NOW - dt.timedelta(minutes=5), NOW + dt.timedelta(days=30)
    )


def _pem_files(tmp: Path, name: str, private_key, cert) -> tuple[Path, Path]:
    key_path, cert_path = tmp / f"{name}.key", tmp / f"{name}.pem"
    key_path.write_bytes(
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


def _sign_and_verify(provider: KeyProvider, policy, tmp: Path, cert_path: Path) -> None:
    root = sign_enveloped(etree.fromstring(DOC), provider, policy)
    data = etree.tostring(root)
    result = verify_enveloped(etree.fromstring(data), TrustStore([provider.certificate]), policy)
    assert result.certificate == provider.certificate
    lean = verify_enveloped(
        etree.fromstring(data), TrustStore([provider.certificate]), policy, engine="lean"
    )
    assert etree.tostring(lean.root) == etree.tostring(result.root)
    if XMLSEC1:
        (tmp / "signed.xml").write_bytes(data)
        done = subprocess.run(
            [XMLSEC1, "--verify", "--trusted-pem", str(cert_path), str(tmp / "signed.xml")],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr


# --------------------------------------------------------------------------- PKCS#12


def test_pkcs12_password_from_env_and_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = _cert(private_key, "P12 Broker")
    bundle = pkcs12.serialize_key_and_certificates(
        b"broker", private_key, cert, None, serialization.BestAvailableEncryption(b"s3cret")
    )
    path = tmp_path / "broker.p12"
    path.write_bytes(bundle)
    monkeypatch.setenv("TEST_P12_PASSWORD", "s3cret")
    key = load_pkcs12(path, password_env="TEST_P12_PASSWORD")
    assert key.certificate == cert and key.key_type == "rsa"
    (tmp_path / "pw").write_text("s3cret\n")
    assert load_pkcs12(path, password_file=tmp_path / "pw").key_name == key.key_name
    cert_path = tmp_path / "p12.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _sign_and_verify(key, RSA_SHA256, tmp_path, cert_path)
    with pytest.raises(SignatureError) as info:
        load_pkcs12(path, password="wrong")
    assert info.value.code == "signature.key_mismatch"
    with pytest.raises(ValueError, match="not set"):
        load_pkcs12(path, password_env="TEST_P12_UNSET_VARIABLE")


def test_read_secret_one_way_only(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="one way only"):
        read_secret("a", env="B")
    assert read_secret(None) is None


# --------------------------------------------------------------------------- PKCS#11


@pytest.fixture(scope="module")
def softhsm(tmp_path_factory: pytest.TempPathFactory):
    """A fresh SoftHSM2 token 'test' (user PIN 1234) holding an RSA and an EC key + certs."""
    util = shutil.which("softhsm2-util")
    library = next((p for p in SOFTHSM_LIBS if p.exists()), None)
    if util is None or library is None:
        pytest.skip("SoftHSM2 is not installed (apt-get install softhsm2)")
    pytest.importorskip("pkcs11", reason="python-pkcs11 is not installed")
    tmp = tmp_path_factory.mktemp("softhsm")
    (tmp / "tokens").mkdir()
    conf = tmp / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp / 'tokens'}\nobjectstore.backend = file\n")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf)}
    old = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)  # read by the library when it is initialised

    def run(*args: str) -> None:
        done = subprocess.run(
            [util, *args], capture_output=True, text=True, env=env, timeout=60, check=False
        )
        assert done.returncode == 0, done.stdout + done.stderr

    run("--init-token", "--free", "--label", "test", "--pin", "1234", "--so-pin", "5678")
    identities = {}
    for label, object_id, private_key in (
        ("rsa", "01", rsa.generate_private_key(public_exponent=65537, key_size=2048)),
        ("ec", "02", ec.generate_private_key(ec.SECP256R1())),
    ):
        cert = _cert(private_key, f"Token {label}")
        key_path, cert_path = _pem_files(tmp, label, private_key, cert)
        run("--import", str(key_path), "--token", "test", "--label", label, "--id", object_id,
            "--pin", "1234")  # fmt: skip
        identities[label] = (cert, cert_path)
    yield library, identities, tmp
    if old is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = old


def _store_certificate(library: Path, label: str, object_id: bytes, cert) -> None:
    """Put the certificate object on the token next to its key (as card issuers do)."""
    from pkcs11 import Attribute, CertificateType, ObjectClass

    from signing.providers import _pkcs11_lib

    token = _pkcs11_lib(str(library)).get_token(token_label="test")
    with token.open(rw=True, user_pin="1234") as session:
        session.create_object(
            {
                Attribute.CLASS: ObjectClass.CERTIFICATE,
                Attribute.CERTIFICATE_TYPE: CertificateType.X_509,
                Attribute.TOKEN: True,
                Attribute.LABEL: label,
                Attribute.ID: object_id,
                Attribute.SUBJECT: cert.subject.public_bytes(),
                Attribute.VALUE: cert.public_bytes(serialization.Encoding.DER),
            }
        )


@pytest.mark.parametrize(("label", "policy"), [("rsa", RSA_SHA256), ("rsa", RSA_SHA1_LEGACY)])
def test_pkcs11_rsa_signs_ceb_document(softhsm, label: str, policy, tmp_path: Path) -> None:
    library, identities, _ = softhsm
    _, cert_path = identities[label]
    (tmp_path / "pin").write_text("1234\n")
    key = open_pkcs11(library, "test", label, pin_file=tmp_path / "pin", cert_path=cert_path)
    try:
        assert isinstance(key, KeyProvider) and key.key_type == "rsa"
        _sign_and_verify(key, policy, tmp_path, cert_path)
    finally:
        key.close()


def test_pkcs11_ec_with_certificate_on_token(
    softhsm, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    library, identities, _ = softhsm
    cert, cert_path = identities["ec"]
    _store_certificate(library, "ec", b"\x02", cert)
    monkeypatch.setenv("TEST_TOKEN_PIN", "1234")
    key = open_pkcs11(library, "test", "ec", pin_env="TEST_TOKEN_PIN")
    try:
        assert key.certificate == cert and key.key_type == "ec"
        _sign_and_verify(key, ECDSA_SHA256, tmp_path, cert_path)
        with pytest.raises(SignatureError) as info:
            sign_enveloped(etree.fromstring(DOC), key, RSA_SHA256)
        assert info.value.code == "signature.key_mismatch"
    finally:
        key.close()


def test_pkcs11_wrong_pin_and_foreign_certificate(softhsm) -> None:
    library, identities, _ = softhsm
    with pytest.raises(SignatureError) as info:
        open_pkcs11(library, "test", "rsa", pin="0000", cert_path=identities["rsa"][1])
    assert info.value.code == "signature.key_mismatch"
    with pytest.raises(SignatureError) as info:
        open_pkcs11(library, "test", "rsa", pin="1234", cert_path=identities["ec"][1])
    assert info.value.code == "signature.key_mismatch"
