"""Signing identities and the trust store, loaded once so the hot path never touches disk."""

from __future__ import annotations

import base64
import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from signing.errors import CERTIFICATE, EXPIRED, KEY_MISMATCH, UNTRUSTED, SignatureError

TEST_KEY_BANNER = b"# TEST KEY generated for the sandbox - not for production\n"
_PEM_BEGIN = b"-----BEGIN"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey


@dataclass(frozen=True)
class SigningKey:
    """A private key with its certificate and the KeyInfo values precomputed for every message."""

    private_key: PrivateKey
    certificate: x509.Certificate
    key_name: str
    cert_b64: str


def serial_hex(cert: x509.Certificate) -> str:
    """KeyName form of a serial: lower-case hex, even length, as counterparties write it."""
    text = f"{cert.serial_number:x}"
    return text if len(text) % 2 == 0 else "0" + text


def cert_der_b64(cert: x509.Certificate) -> str:
    """Base64 of the DER certificate, as carried in ds:X509Certificate."""
    return base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode("ascii")


def _strip_preamble(pem: bytes) -> bytes:
    """Drop comment lines before the PEM armour so banner-marked test keys load everywhere."""
    start = pem.find(_PEM_BEGIN)
    return pem[start:] if start > 0 else pem


def _public_der(key: object) -> bytes:
    """SubjectPublicKeyInfo bytes, used to compare a private key with a certificate."""
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def load_signing_key(
    key_path: str | os.PathLike[str],
    cert_path: str | os.PathLike[str],
    password: bytes | None = None,
) -> SigningKey:
    """Load a PEM key and certificate once at startup and check that they belong together."""
    key_pem = _strip_preamble(Path(key_path).read_bytes())
    cert_pem = _strip_preamble(Path(cert_path).read_bytes())
    private_key = serialization.load_pem_private_key(key_pem, password=password)
    if not isinstance(private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise SignatureError(
            KEY_MISMATCH, f"unsupported signing key type {type(private_key).__name__}"
        )
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise SignatureError(CERTIFICATE, f"cannot parse certificate {cert_path}: {exc}") from exc
    if _public_der(private_key.public_key()) != _public_der(certificate.public_key()):
        raise SignatureError(
            KEY_MISMATCH, f"private key {key_path} does not match certificate {cert_path}"
        )
    return SigningKey(
        private_key=private_key,
        certificate=certificate,
        key_name=serial_hex(certificate),
        cert_b64=cert_der_b64(certificate),
    )


def build_self_signed(
    common_name: str,
    private_key: PrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """A self-signed end-entity certificate for sandbox identities and tests."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(private_key.public_key()), critical=False
        )
        .sign(private_key, hashes.SHA256())
    )


def _write_new(path: Path, data: bytes, mode: int) -> None:
    """Create a file that must not exist yet, with its final permissions from the start."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def generate_test_identity(
    common_name: str, key_path: Path, cert_path: Path, *, days: int = 3650
) -> None:
    """Create a sandbox RSA-2048 key and self-signed certificate; never overwrites anything."""
    key_path, cert_path = Path(key_path), Path(cert_path)
    for path in (key_path, cert_path):
        if path.exists():
            raise FileExistsError(f"refusing to overwrite {path}")
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    cert = build_self_signed(
        common_name, private_key, now - dt.timedelta(minutes=5), now + dt.timedelta(days=days)
    )
    key_pem = private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    _write_new(key_path, TEST_KEY_BANNER + key_pem, 0o600)
    _write_new(cert_path, cert.public_bytes(serialization.Encoding.PEM), 0o644)


def _valid_at(cert: x509.Certificate, at: dt.datetime) -> bool:
    """Whether `at` lies inside the certificate's validity window."""
    return cert.not_valid_before_utc <= at <= cert.not_valid_after_utc


def _is_ca(cert: x509.Certificate) -> bool:
    """Only certificates that say they are CAs may vouch for others."""
    try:
        return bool(cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca)
    except x509.ExtensionNotFound:
        return False


def _issued_by(cert: x509.Certificate, ca: x509.Certificate) -> bool:
    """Whether `ca` really signed `cert` (name match and a valid signature)."""
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _describe(cert: x509.Certificate) -> str:
    """Short human description of a certificate for error messages."""
    return f"certificate {cert.subject.rfc4514_string()!r} (serial {serial_hex(cert)})"


class TrustStore:
    """Certificates we accept as signers directly, or as CAs issuing signer certificates."""

    def __init__(self, certificates: Iterable[x509.Certificate] = ()) -> None:
        self._certificates = list(certificates)
        self._exact = {c.public_bytes(serialization.Encoding.DER) for c in self._certificates}
        self._cas: dict[bytes, list[x509.Certificate]] = {}
        for cert in self._certificates:
            if _is_ca(cert):
                self._cas.setdefault(cert.subject.public_bytes(), []).append(cert)

    @property
    def certificates(self) -> list[x509.Certificate]:
        """The anchors, for diagnostics."""
        return list(self._certificates)

    @classmethod
    def from_pem_files(cls, paths: Iterable[str | os.PathLike[str]]) -> TrustStore:
        """Load every certificate from the given PEM files (a file may hold several)."""
        certs: list[x509.Certificate] = []
        for path in paths:
            data = Path(path).read_bytes()
            try:
                certs.extend(x509.load_pem_x509_certificates(data))
            except ValueError as exc:
                raise ValueError(f"no usable certificate in {path}: {exc}") from exc
        return cls(certs)

    @classmethod
    def from_directory(cls, directory: str | os.PathLike[str]) -> TrustStore:
        """Load all *.pem / *.crt certificates in a directory; files without one are skipped."""
        root = Path(directory)
        paths = sorted(p for p in root.iterdir() if p.suffix in {".pem", ".crt"} and p.is_file())
        return cls.from_pem_files(p for p in paths if b"-----BEGIN CERTIFICATE" in p.read_bytes())

    def is_trusted(self, cert: x509.Certificate, at: dt.datetime) -> None:
        """Raise unless `cert` is an anchor or directly issued by a CA anchor, valid at `at`."""
        at = at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)
        if cert.public_bytes(serialization.Encoding.DER) in self._exact:
            self._check_validity(cert, at)
            return
        for ca in self._cas.get(cert.issuer.public_bytes(), []):
            if _issued_by(cert, ca):
                self._check_validity(ca, at)
                self._check_validity(cert, at)
                return
        raise SignatureError(
            UNTRUSTED,
            f"{_describe(cert)} issued by {cert.issuer.rfc4514_string()!r} "
            "is not in the trust store and not issued by a trusted CA",
        )

    @staticmethod
    def _check_validity(cert: x509.Certificate, at: dt.datetime) -> None:
        """Raise signature.expired when the certificate is outside its validity at `at`."""
        if not _valid_at(cert, at):
            raise SignatureError(
                EXPIRED,
                f"{_describe(cert)} is not valid at {at.isoformat()} "
                f"(valid {cert.not_valid_before_utc.isoformat()} to "
                f"{cert.not_valid_after_utc.isoformat()})",
            )
