"""SM2 keys and certificates (GB/T 32918, GM/T 0009/0010/0015) for the chinaport sm2-sm3 method.

Why this module exists: the `cryptography` package has SM3 but no SM2 (it refuses the SM2
curve, in keys and in certificates' public keys), so:

- the SM2 arithmetic comes from `gmalg` (PyPI, pure Python, maintained; secrets-based nonces;
  user id passed explicitly). `gmssl` was rejected: it draws the signing nonce from `random`,
  which is not a CSPRNG. SM3 comes from `cryptography` (OpenSSL), which is much faster.
- an SM2 identity is an ordinary X.509 certificate whose SubjectPublicKeyInfo is
  id-ecPublicKey with the SM2 curve (1.2.156.10197.1.301), as OpenSSL 3 and the e-port's
  CAs issue them (a bare 1.2.156.10197.1.301 algorithm OID is accepted too). cryptography
  parses such a certificate (names, serial, validity, extensions); only its public key needs
  us, so we read the SubjectPublicKeyInfo with the small DER reader below.
- signatures use the standard user id "1234567812345678" (GM/T 0009) in Z.
- SignatureValue encoding: raw r||s (64 bytes), like XML-DSig 1.1 ECDSA and the r||s the
  e-port's key client returns; the official 2022-05 samples cannot settle it (they carry an
  RSA-1024 value). Verification also accepts the GM/T 0009 DER SEQUENCE {r, s}: a 64-byte
  value is always read as r||s, anything else must be strict DER, so there is no ambiguity.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import re
import secrets
from dataclasses import dataclass

import gmalg
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.utils import (
    decode_dss_signature,
    encode_dss_signature,
)

SM2_CURVE_OID = "1.2.156.10197.1.301"
SM2_SM3_SIGNATURE_OID = "1.2.156.10197.1.501"
EC_PUBLIC_KEY_OID = "1.2.840.10045.2.1"
DEFAULT_USER_ID = b"1234567812345678"

# Curve order n of the SM2 recommended curve (GB/T 32918.5).
SM2_N = 0xFFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123


class SM2Error(ValueError):
    """Bad SM2 key, certificate or signature encoding."""


# --------------------------------------------------------------------------- minimal DER


def _read_tlv(data: bytes, pos: int) -> tuple[int, int, int, int]:
    """(tag, content start, content end, next position) of the DER element at `pos`."""
    if pos + 2 > len(data):
        raise SM2Error("truncated DER")
    tag = data[pos]
    length = data[pos + 1]
    pos += 2
    if length & 0x80:
        count = length & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise SM2Error("bad DER length")
        length = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    end = pos + length
    if end > len(data):
        raise SM2Error("truncated DER")
    return tag, pos, end, end


def _children(data: bytes, start: int, end: int) -> list[tuple[int, int, int]]:
    """(tag, content start, content end) of each element inside a constructed value."""
    return [(tag, c_start, c_end) for tag, _, c_start, c_end in _elements(data, start, end)]


def _elements(data: bytes, start: int, end: int) -> list[tuple[int, int, int, int]]:
    """(tag, element start, content start, content end) of each element in a value."""
    out = []
    pos = start
    while pos < end:
        element_start = pos
        tag, c_start, c_end, pos = _read_tlv(data, pos)
        out.append((tag, element_start, c_start, c_end))
    if pos != end:
        raise SM2Error("DER element overruns its parent")
    return out


def _decode_oid(raw: bytes) -> str:
    """Dotted string of a DER OBJECT IDENTIFIER's content."""
    if not raw:
        raise SM2Error("empty OID")
    parts: list[int] = []
    value = 0
    for byte in raw:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            parts.append(value)
            value = 0
    first = min(parts[0] // 40, 2)
    return ".".join(str(p) for p in [first, parts[0] - 40 * first, *parts[1:]])


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(raw)]) + raw


def _tlv(tag: int, content: bytes) -> bytes:
    return bytes([tag]) + _len(len(content)) + content


def _seq(*items: bytes) -> bytes:
    return _tlv(0x30, b"".join(items))


def _int(n: int) -> bytes:
    raw = n.to_bytes(n.bit_length() // 8 + 1, "big", signed=False) if n else b"\x00"
    return _tlv(0x02, raw)


def _oid(dotted: str) -> bytes:
    nums = [int(p) for p in dotted.split(".")]
    body = bytearray()
    for value in [40 * nums[0] + nums[1], *nums[2:]]:
        chunk = [value & 0x7F]
        value >>= 7
        while value:
            chunk.append(0x80 | (value & 0x7F))
            value >>= 7
        body.extend(reversed(chunk))
    return _tlv(0x06, bytes(body))


def _bits(content: bytes) -> bytes:
    return _tlv(0x03, b"\x00" + content)


def _octets(content: bytes) -> bytes:
    return _tlv(0x04, content)


def _time(when: dt.datetime) -> bytes:
    when = when.astimezone(dt.UTC)
    if 1950 <= when.year < 2050:
        return _tlv(0x17, when.strftime("%y%m%d%H%M%SZ").encode())
    return _tlv(0x18, when.strftime("%Y%m%d%H%M%SZ").encode())


# --------------------------------------------------------------------------- keys


def _point_ok(point: bytes) -> bool:
    return len(point) == 65 and point[0] == 4 and gmalg.SM2().verify_pk(point)


@dataclass(frozen=True)
class SM2PublicKey:
    """An SM2 public key: the uncompressed point 04||x||y."""

    point: bytes

    def __post_init__(self) -> None:
        if not _point_ok(self.point):
            raise SM2Error("not a valid uncompressed point on the SM2 curve")

    def verify(self, signature_rs: bytes, data: bytes, user_id: bytes = DEFAULT_USER_ID) -> bool:
        """Check a raw r||s signature over `data` (SM3 with Z for `user_id`)."""
        if len(signature_rs) != 64:
            return False
        r, s = int.from_bytes(signature_rs[:32], "big"), int.from_bytes(signature_rs[32:], "big")
        if not (0 < r < SM2_N and 0 < s < SM2_N):
            return False
        return bool(
            gmalg.SM2(pk=self.point, uid=user_id).verify(
                data, r.to_bytes(32, "big"), s.to_bytes(32, "big")
            )
        )

    def spki_der(self) -> bytes:
        """SubjectPublicKeyInfo: id-ecPublicKey with the SM2 named curve."""
        return _seq(_seq(_oid(EC_PUBLIC_KEY_OID), _oid(SM2_CURVE_OID)), _bits(self.point))


class SM2PrivateKey:
    """An SM2 private key; `repr` never shows the secret."""

    __slots__ = ("_d", "_public")

    def __init__(self, d: int) -> None:
        if not 0 < d < SM2_N - 1:
            raise SM2Error("SM2 private key out of range")
        self._d = d
        self._public = SM2PublicKey(gmalg.SM2().generate_pk(d.to_bytes(32, "big")))

    @classmethod
    def generate(cls) -> SM2PrivateKey:
        return cls(secrets.randbelow(SM2_N - 2) + 1)

    def public_key(self) -> SM2PublicKey:
        return self._public

    def sign(self, data: bytes, user_id: bytes = DEFAULT_USER_ID) -> bytes:
        """Raw r||s (64 bytes) over `data`, SM3 with Z for `user_id`."""
        signer = gmalg.SM2(sk=self._d.to_bytes(32, "big"), pk=self._public.point, uid=user_id)
        r, s = signer.sign(data)
        return int.from_bytes(r, "big").to_bytes(32, "big") + int.from_bytes(s, "big").to_bytes(
            32, "big"
        )

    def pkcs8_der(self) -> bytes:
        """Unencrypted PKCS#8 as OpenSSL writes SM2 keys (id-ecPublicKey + SM2 curve)."""
        ec_private = _seq(
            _int(1), _octets(self._d.to_bytes(32, "big")), _tlv(0xA1, _bits(self._public.point))
        )
        return _seq(
            _int(0), _seq(_oid(EC_PUBLIC_KEY_OID), _oid(SM2_CURVE_OID)), _octets(ec_private)
        )

    def pkcs8_pem(self) -> bytes:
        return _pem("PRIVATE KEY", self.pkcs8_der())

    def __repr__(self) -> str:
        return f"SM2PrivateKey(public={self._public.point[:5].hex()}...)"


def _pem(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return (
        f"-----BEGIN {label}-----\n".encode()
        + b"\n".join(lines)
        + f"\n-----END {label}-----\n".encode()
    )


_PEM_RE = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END \1-----", re.S)


def _ec_private_from_sec1(der: bytes, start: int, end: int, curve_known: bool) -> SM2PrivateKey:
    """ECPrivateKey ::= SEQUENCE { 1, privateKey OCTET STRING, [0] params, [1] publicKey }."""
    items = _children(der, start, end)
    if len(items) < 2 or items[0][0] != 0x02 or items[1][0] != 0x04:
        raise SM2Error("not an ECPrivateKey")
    curve_ok = curve_known
    for tag, c_start, c_end in items[2:]:
        if tag == 0xA0:
            inner = _children(der, c_start, c_end)
            curve_ok = (
                bool(inner)
                and inner[0][0] == 0x06
                and (_decode_oid(der[inner[0][1] : inner[0][2]]) == SM2_CURVE_OID)
            )
    if not curve_ok:
        raise SM2Error("EC private key is not on the SM2 curve")
    return SM2PrivateKey(int.from_bytes(der[items[1][1] : items[1][2]], "big"))


def load_sm2_private_key_pem(pem: bytes) -> SM2PrivateKey:
    """Unencrypted PKCS#8 ("PRIVATE KEY") or SEC1 ("EC PRIVATE KEY") SM2 key in PEM."""
    match = _PEM_RE.search(pem)
    if not match:
        raise SM2Error("no PEM block")
    label, der = match.group(1).decode(), base64.b64decode(b"".join(match.group(2).split()))
    _, start, end, _ = _read_tlv(der, 0)
    if label == "EC PRIVATE KEY":
        return _ec_private_from_sec1(der, start, end, curve_known=False)
    if label != "PRIVATE KEY":
        raise SM2Error(f"unsupported PEM block {label!r} for SM2 (encrypted keys: use PKCS#12)")
    items = _children(der, start, end)
    if len(items) < 3 or items[1][0] != 0x30 or items[2][0] != 0x04:
        raise SM2Error("not a PKCS#8 PrivateKeyInfo")
    alg = _children(der, items[1][1], items[1][2])
    oids = [_decode_oid(der[s:e]) for t, s, e in alg if t == 0x06]
    if SM2_CURVE_OID not in oids:
        raise SM2Error(f"PKCS#8 key algorithm {oids} is not SM2")
    _, c_start, c_end, _ = _read_tlv(der, items[2][1])
    return _ec_private_from_sec1(der, c_start, c_end, curve_known=True)


# --------------------------------------------------------------------------- certificates


def _spki_range(der: bytes) -> tuple[int, int]:
    """Byte range of SubjectPublicKeyInfo (the whole TLV) inside a certificate's DER."""
    _, c_start, c_end, _ = _read_tlv(der, 0)
    tbs = _children(der, c_start, c_end)[0]
    fields = _elements(der, tbs[1], tbs[2])
    index = 6 if fields[0][0] == 0xA0 else 5  # [0] version is optional
    tag, f_start, _, f_end = fields[index]
    if tag != 0x30:
        raise SM2Error("certificate SubjectPublicKeyInfo is not a SEQUENCE")
    return f_start, f_end


@functools.lru_cache(maxsize=256)
def spki_der_from_certificate_der(der: bytes) -> bytes:
    """SubjectPublicKeyInfo bytes of any certificate (works where cryptography cannot load
    the key, e.g. SM2)."""
    start, end = _spki_range(der)
    return der[start:end]


def is_sm2_spki(spki: bytes) -> bool:
    """id-ecPublicKey with the SM2 curve, or the bare SM2 algorithm OID."""
    try:
        _, start, end, _ = _read_tlv(spki, 0)
        alg = _children(spki, start, end)[0]
        oids = [_decode_oid(spki[s:e]) for t, s, e in _children(spki, alg[1], alg[2]) if t == 6]
    except (SM2Error, IndexError):
        return False
    return SM2_CURVE_OID in oids


@functools.lru_cache(maxsize=256)
def _public_from_spki(spki: bytes) -> SM2PublicKey:
    if not is_sm2_spki(spki):
        raise SM2Error("the certificate's key is not an SM2 key")
    _, start, end, _ = _read_tlv(spki, 0)
    bit_string = _children(spki, start, end)[1]
    raw = spki[bit_string[1] : bit_string[2]]
    if not raw or raw[0] != 0:
        raise SM2Error("bad SM2 public key BIT STRING")
    return SM2PublicKey(raw[1:])


def certificate_der(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.DER)


def is_sm2_certificate(cert: x509.Certificate) -> bool:
    """Whether the certificate carries an SM2 public key."""
    try:
        return is_sm2_spki(spki_der_from_certificate_der(certificate_der(cert)))
    except (SM2Error, IndexError):
        return False


def sm2_public_key(cert: x509.Certificate) -> SM2PublicKey:
    """The SM2 public key of a certificate, or SM2Error."""
    try:
        return _public_from_spki(spki_der_from_certificate_der(certificate_der(cert)))
    except IndexError as exc:
        raise SM2Error("cannot locate the certificate's SubjectPublicKeyInfo") from exc


def decode_signature_value(value: bytes) -> bytes:
    """SignatureValue to raw r||s: 64 bytes as is, else strict DER SEQUENCE {r, s}."""
    if len(value) == 64:
        return value
    try:
        r, s = decode_dss_signature(value)
    except ValueError as exc:
        raise SM2Error(
            f"SM2 SignatureValue must be 64 bytes r||s or DER, got {len(value)} bytes"
        ) from exc
    if encode_dss_signature(r, s) != value or r >= 1 << 256 or s >= 1 << 256:
        raise SM2Error("SM2 SignatureValue is not strict DER")
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def encode_signature_value(raw: bytes, encoding: str) -> bytes:
    """raw r||s to the policy's encoding ("raw" or "der")."""
    if encoding == "raw":
        return raw
    if encoding == "der":
        return encode_dss_signature(
            int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big")
        )
    raise SM2Error(f"unknown SM2 signature encoding {encoding!r}")


def certificate_signed_by(cert: x509.Certificate, issuer_key: SM2PublicKey) -> bool:
    """Whether an SM2-with-SM3 certificate's signature verifies with the issuer's SM2 key."""
    if cert.signature_algorithm_oid.dotted_string != SM2_SM3_SIGNATURE_OID:
        return False
    try:
        raw = decode_signature_value(cert.signature)
    except SM2Error:
        return False
    return issuer_key.verify(raw, cert.tbs_certificate_bytes)


def sm3(data: bytes) -> bytes:
    """SM3 digest (OpenSSL through cryptography)."""
    hasher = hashes.Hash(hashes.SM3())
    hasher.update(data)
    return hasher.finalize()


def build_sm2_self_signed(
    common_name: str,
    private_key: SM2PrivateKey,
    not_before: dt.datetime,
    not_after: dt.datetime,
    *,
    ca: bool = False,
    serial: int | None = None,
) -> x509.Certificate:
    """A self-signed SM2-with-SM3 certificate (cryptography's builder cannot sign with SM2)."""
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, common_name)]).public_bytes()
    spki = private_key.public_key().spki_der()
    key_usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=not ca,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=ca,
        crl_sign=ca,
        encipher_only=False,
        decipher_only=False,
    )
    # RFC 5280 method 1 key identifier: an identifier, not a security use of SHA-1.
    ski = hashes.Hash(hashes.SHA1())  # noqa: S303
    ski.update(private_key.public_key().point)
    extensions = [
        (x509.BasicConstraints(ca=ca, path_length=0 if ca else None), True),
        (key_usage, True),
        (x509.SubjectKeyIdentifier(ski.finalize()), False),
    ]
    ext_der = _seq(
        *(
            _seq(
                _oid(ext.oid.dotted_string),
                _tlv(0x01, b"\xff") if critical else b"",
                _octets(ext.public_bytes()),
            )
            for ext, critical in extensions
        )
    )
    algorithm = _seq(_oid(SM2_SM3_SIGNATURE_OID))
    tbs = _seq(
        _tlv(0xA0, _int(2)),
        _int(serial or x509.random_serial_number()),
        algorithm,
        name,
        _seq(_time(not_before), _time(not_after)),
        name,
        spki,
        _tlv(0xA3, ext_der),
    )
    signature = encode_signature_value(private_key.sign(tbs), "der")
    return x509.load_der_x509_certificate(_seq(tbs, algorithm, _bits(signature)))
