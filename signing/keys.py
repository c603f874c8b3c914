"""Signing identities and the trust store, loaded once so the hot path never touches disk.

Every signer is a `KeyProvider` (certificate, KeyName, key type, and `sign(data, method)`
returning the XML-DSig SignatureValue bytes). `SigningKey` is the in-memory provider for PEM
files (`load_signing_key`) and PKCS#12 (`signing.providers.load_pkcs12`);
`signing.providers.Pkcs11Key` signs on a PKCS#11 token. Keys may be RSA, EC P-256 or SM2.
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from signing import sm2
from signing.errors import (
    ALGORITHM,
    CERTIFICATE,
    EXPIRED,
    KEY_MISMATCH,
    REVOKED,
    UNTRUSTED,
    SignatureError,
)
from signing.policy import (
    ECDSA_SHA1_URI,
    ECDSA_SHA256_URI,
    ECDSA_SHA384_URI,
    ECDSA_SHA512_URI,
    RSA_SHA1_URI,
    RSA_SHA256_URI,
    RSA_SHA384_URI,
    RSA_SHA512_URI,
    SM2_SM3_URI,
)

TEST_KEY_BANNER = b"# TEST KEY generated for the sandbox - not for production\n"
_PEM_BEGIN = b"-----BEGIN"

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | sm2.SM2PrivateKey

# signature method URI -> (key type, hash); SM2 hashes with SM3 inside the SM2 primitive.
METHODS: dict[str, tuple[str, type[hashes.HashAlgorithm]]] = {
    RSA_SHA1_URI: ("rsa", hashes.SHA1),
    RSA_SHA256_URI: ("rsa", hashes.SHA256),
    RSA_SHA384_URI: ("rsa", hashes.SHA384),
    RSA_SHA512_URI: ("rsa", hashes.SHA512),
    ECDSA_SHA1_URI: ("ec", hashes.SHA1),
    ECDSA_SHA256_URI: ("ec", hashes.SHA256),
    ECDSA_SHA384_URI: ("ec", hashes.SHA384),
    ECDSA_SHA512_URI: ("ec", hashes.SHA512),
    SM2_SM3_URI: ("sm2", hashes.SM3),
}

KEY_TYPE_NAMES = {"rsa": "RSA", "ec": "EC (ECDSA)", "sm2": "SM2"}


@runtime_checkable
class KeyProvider(Protocol):
    """Anything that can sign for one certificate: PEM / PKCS#12 in memory, a PKCS#11 token.

    `sign` returns the SignatureValue bytes as XML-DSig carries them: PKCS#1 v1.5 for RSA,
    r||s for ECDSA and SM2 (SM2 with the standard user id). It raises SignatureError
    (signature.key_mismatch / signature.algorithm) for a method the key cannot do.
    """

    @property
    def certificate(self) -> x509.Certificate: ...

    @property
    def key_name(self) -> str: ...

    @property
    def cert_b64(self) -> str: ...

    @property
    def key_type(self) -> str: ...

    def sign(self, data: bytes, signature_method: str) -> bytes: ...


def key_type_of(key: object) -> str:
    """'rsa', 'ec' or 'sm2' for a private or public key object, else its type name."""
    if isinstance(key, rsa.RSAPrivateKey | rsa.RSAPublicKey):
        return "rsa"
    if isinstance(key, ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey):
        return "ec"
    if isinstance(key, sm2.SM2PrivateKey | sm2.SM2PublicKey):
        return "sm2"
    return type(key).__name__


def method_for(signature_method: str, key_type: str) -> type[hashes.HashAlgorithm]:
    """The hash of a signature method, after checking the key type can produce it."""
    if signature_method not in METHODS:
        raise SignatureError(ALGORITHM, f"unknown signature method {signature_method}")
    family, hash_cls = METHODS[signature_method]
    if family != key_type:
        raise SignatureError(
            KEY_MISMATCH,
            f"signature method {signature_method} needs a {KEY_TYPE_NAMES[family]} key, "
            f"but the signing key is {KEY_TYPE_NAMES.get(key_type, key_type)}",
        )
    return hash_cls


@dataclass(frozen=True)
class SigningKey:
    """A private key in memory with its certificate and the KeyInfo values precomputed."""

    private_key: PrivateKey
    certificate: x509.Certificate
    key_name: str
    cert_b64: str

    @property
    def key_type(self) -> str:
        return key_type_of(self.private_key)

    def sign(self, data: bytes, signature_method: str) -> bytes:
        """SignatureValue bytes over `data` (see KeyProvider)."""
        hash_cls = method_for(signature_method, self.key_type)
        key = self.private_key
        if isinstance(key, rsa.RSAPrivateKey):
            return key.sign(data, padding.PKCS1v15(), hash_cls())
        if isinstance(key, ec.EllipticCurvePrivateKey):
            r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hash_cls())))
            size = (key.curve.key_size + 7) // 8
            return r.to_bytes(size, "big") + s.to_bytes(size, "big")
        return key.sign(data)


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
    if isinstance(key, sm2.SM2PublicKey):
        return key.spki_der()
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def certificate_spki(cert: x509.Certificate) -> bytes:
    """The certificate's SubjectPublicKeyInfo DER, for any key type (SM2 included)."""
    return sm2.spki_der_from_certificate_der(cert.public_bytes(serialization.Encoding.DER))


def _load_private_key_pem(key_pem: bytes, password: bytes | None, source: object) -> PrivateKey:
    """RSA / EC through cryptography; SM2 (which cryptography refuses) through signing.sm2."""
    try:
        private_key = serialization.load_pem_private_key(key_pem, password=password)
    except UnsupportedAlgorithm:
        if password is not None:
            raise SignatureError(
                KEY_MISMATCH, f"{source}: encrypted SM2 PEM keys are not supported; use PKCS#12"
            ) from None
        try:
            return sm2.load_sm2_private_key_pem(key_pem)
        except sm2.SM2Error as exc:
            raise SignatureError(KEY_MISMATCH, f"{source}: unsupported key: {exc}") from exc
    if not isinstance(private_key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise SignatureError(
            KEY_MISMATCH, f"unsupported signing key type {type(private_key).__name__}"
        )
    return private_key


def signing_key_from(
    private_key: PrivateKey, certificate: x509.Certificate, source: str
) -> SigningKey:
    """Check that key and certificate belong together and precompute the KeyInfo values."""
    if _public_der(private_key.public_key()) != certificate_spki(certificate):
        raise SignatureError(
            KEY_MISMATCH, f"{source}: the private key does not match the certificate"
        )
    return SigningKey(
        private_key=private_key,
        certificate=certificate,
        key_name=serial_hex(certificate),
        cert_b64=cert_der_b64(certificate),
    )


def load_signing_key(
    key_path: str | os.PathLike[str],
    cert_path: str | os.PathLike[str],
    password: bytes | None = None,
) -> SigningKey:
    """Load a PEM key and certificate once at startup and check that they belong together."""
    key_pem = _strip_preamble(Path(key_path).read_bytes())
    cert_pem = _strip_preamble(Path(cert_path).read_bytes())
    private_key = _load_private_key_pem(key_pem, password, key_path)
    try:
        certificate = x509.load_pem_x509_certificate(cert_pem)
    except ValueError as exc:
        raise SignatureError(CERTIFICATE, f"cannot parse certificate {cert_path}: {exc}") from exc
    return signing_key_from(
        private_key, certificate, f"private key {key_path} and certificate {cert_path}"
    )


def build_self_signed(
    common_name: str,
    private_key: PrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
) -> x509.Certificate:
    """A self-signed end-entity certificate for sandbox identities and tests."""
    if isinstance(private_key, sm2.SM2PrivateKey):
        return sm2.build_sm2_self_signed(common_name, private_key, not_before, not_after)
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


KEY_TYPES = ("rsa", "ec", "sm2")


def generate_test_identity(
    common_name: str,
    key_path: Path,
    cert_path: Path,
    *,
    days: int = 3650,
    key_type: str = "rsa",
) -> None:
    """Create a sandbox key (RSA-2048, EC P-256 or SM2) and a self-signed certificate (SM2
    certificates are signed SM2-with-SM3); never overwrites anything."""
    if key_type not in KEY_TYPES:
        raise ValueError(f"unknown key type {key_type!r} (known: {', '.join(KEY_TYPES)})")
    key_path, cert_path = Path(key_path), Path(cert_path)
    for path in (key_path, cert_path):
        if path.exists():
            raise FileExistsError(f"refusing to overwrite {path}")
    now = dt.datetime.now(dt.UTC).replace(microsecond=0)
    not_before, not_after = now - dt.timedelta(minutes=5), now + dt.timedelta(days=days)
    if key_type == "sm2":
        sm2_key = sm2.SM2PrivateKey.generate()
        cert = sm2.build_sm2_self_signed(common_name, sm2_key, not_before, not_after)
        key_pem = sm2_key.pkcs8_pem()
    else:
        private_key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if key_type == "rsa"
            else ec.generate_private_key(ec.SECP256R1())
        )
        cert = build_self_signed(common_name, private_key, not_before, not_after)
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
    if cert.signature_algorithm_oid.dotted_string == sm2.SM2_SM3_SIGNATURE_OID:
        if cert.issuer != ca.subject:
            return False
        try:
            return sm2.certificate_signed_by(cert, sm2.sm2_public_key(ca))
        except sm2.SM2Error:
            return False
    try:
        cert.verify_directly_issued_by(ca)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm):
        return False
    return True


def _describe(cert: x509.Certificate) -> str:
    """Short human description of a certificate for error messages."""
    return f"certificate {cert.subject.rfc4514_string()!r} (serial {serial_hex(cert)})"


def parse_serial(text: str) -> int:
    """A certificate serial as people write it: hex as KeyName writes it ("0a1b"), with an
    optional 0x prefix or colons ("0A:1B", as openssl prints it)."""
    compact = text.strip().lower().removeprefix("0x").replace(":", "")
    if not compact or any(c not in "0123456789abcdef" for c in compact):
        raise ValueError(f"not a hexadecimal certificate serial: {text!r}")
    return int(compact, 16)


def load_revoked_serials(path: str | os.PathLike[str]) -> frozenset[int]:
    """Revoked certificate serials from a file: one hex serial a line; blank lines and
    anything after '#' are ignored. A line that is not a serial fails loudly (a typo must
    not silently un-revoke a certificate)."""
    serials: set[int] = set()
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        entry = line.split("#", 1)[0].strip()
        if not entry:
            continue
        try:
            serials.add(parse_serial(entry))
        except ValueError as exc:
            raise ValueError(f"{path}:{number}: {exc}") from None
    return frozenset(serials)


class TrustStore:
    """Certificates we accept as signers directly, or as CAs issuing signer certificates;
    `revoked_serials` are refused even when trusted (an anchor's or a CA's too)."""

    def __init__(
        self,
        certificates: Iterable[x509.Certificate] = (),
        revoked_serials: Iterable[int] = (),
    ) -> None:
        self._certificates = list(certificates)
        self._revoked = frozenset(revoked_serials)
        self._exact = {c.public_bytes(serialization.Encoding.DER) for c in self._certificates}
        self._cas: dict[bytes, list[x509.Certificate]] = {}
        for cert in self._certificates:
            if _is_ca(cert):
                self._cas.setdefault(cert.subject.public_bytes(), []).append(cert)

    @property
    def certificates(self) -> list[x509.Certificate]:
        """The anchors, for diagnostics."""
        return list(self._certificates)

    @property
    def revoked_serials(self) -> frozenset[int]:
        """The revoked serials, for diagnostics."""
        return self._revoked

    @classmethod
    def from_pem_files(
        cls,
        paths: Iterable[str | os.PathLike[str]],
        revoked: str | os.PathLike[str] | None = None,
    ) -> TrustStore:
        """Load every certificate from the given PEM files (a file may hold several), and
        the revoked serials from `revoked` (see load_revoked_serials) when given."""
        certs: list[x509.Certificate] = []
        for path in paths:
            data = Path(path).read_bytes()
            try:
                certs.extend(x509.load_pem_x509_certificates(data))
            except ValueError as exc:
                raise ValueError(f"no usable certificate in {path}: {exc}") from exc
        return cls(certs, load_revoked_serials(revoked) if revoked is not None else ())

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
            self._check_revocation(cert)
            return
        for ca in self._cas.get(cert.issuer.public_bytes(), []):
            if _issued_by(cert, ca):
                self._check_validity(ca, at)
                self._check_validity(cert, at)
                self._check_revocation(ca)
                self._check_revocation(cert)
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

    def _check_revocation(self, cert: x509.Certificate) -> None:
        """Raise signature.revoked when the certificate's serial is on the revocation list
        (checked only once the certificate is known to be genuine, so that an impostor with
        a revoked serial is still told it is untrusted)."""
        if cert.serial_number in self._revoked:
            raise SignatureError(REVOKED, f"{_describe(cert)} is revoked")
