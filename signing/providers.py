"""Key providers beyond PEM files: PKCS#12 bundles and PKCS#11 tokens (the brokers' USB keys).

All of them satisfy `signing.keys.KeyProvider`, so `sign_enveloped(root, provider, policy)`
works the same with any of them:

- `load_signing_key(key.pem, cert.pem)` -> SigningKey (signing.keys).
- `load_pkcs12(path, password_env=..., password_file=...)` -> SigningKey.
- `open_pkcs11(library, token_label, key_label, pin_env=..., pin_file=...)` -> Pkcs11Key,
  which signs on the token (the private key never leaves it). RSA and EC keys; SM2 on a
  token needs vendor mechanisms that SoftHSM2 lacks, so it is refused with a clear error.

Secrets (passwords, PINs) come from an environment variable or a file (first line, trailing
newline stripped), never from configuration files.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import pkcs12

from signing.errors import ALGORITHM, CERTIFICATE, KEY_MISMATCH, SignatureError
from signing.keys import (
    SigningKey,
    cert_der_b64,
    method_for,
    serial_hex,
    signing_key_from,
)

__all__ = ["Pkcs11Key", "load_pkcs12", "open_pkcs11", "read_secret"]


def read_secret(
    value: str | bytes | None = None,
    *,
    env: str | None = None,
    file: str | os.PathLike[str] | None = None,
    what: str = "secret",
) -> bytes | None:
    """A password or PIN given directly, by environment variable name, or by file path."""
    if sum(x is not None for x in (value, env, file)) > 1:
        raise ValueError(f"give the {what} one way only (value, env or file)")
    if value is not None:
        return value.encode() if isinstance(value, str) else value
    if env is not None:
        if env not in os.environ:
            raise ValueError(f"environment variable {env} with the {what} is not set")
        return os.environ[env].encode()
    if file is not None:
        return Path(file).read_bytes().splitlines()[0] if Path(file).stat().st_size else b""
    return None


def load_pkcs12(
    path: str | os.PathLike[str],
    *,
    password: str | bytes | None = None,
    password_env: str | None = None,
    password_file: str | os.PathLike[str] | None = None,
) -> SigningKey:
    """Load a .p12/.pfx (RSA or EC key with its certificate) once at startup."""
    secret = read_secret(password, env=password_env, file=password_file, what="PKCS#12 password")
    try:
        bundle = pkcs12.load_pkcs12(Path(path).read_bytes(), secret)
    except ValueError as exc:
        raise SignatureError(
            KEY_MISMATCH, f"cannot open PKCS#12 {path} (wrong password or unsupported): {exc}"
        ) from exc
    if bundle.key is None or bundle.cert is None:
        raise SignatureError(CERTIFICATE, f"PKCS#12 {path} must hold a private key and its cert")
    return signing_key_from(bundle.key, bundle.cert.certificate, f"PKCS#12 {path}")  # type: ignore[arg-type]


# --------------------------------------------------------------------------- PKCS#11

_LIBS: dict[str, Any] = {}
_LIBS_LOCK = threading.Lock()


def _pkcs11_lib(path: str) -> Any:
    """python-pkcs11 initialises a module once per process: share it."""
    import pkcs11

    with _LIBS_LOCK:
        if path not in _LIBS:
            _LIBS[path] = pkcs11.lib(path)
        return _LIBS[path]


class Pkcs11Key:
    """A KeyProvider whose private key stays on a PKCS#11 token; one session, serialized."""

    def __init__(self, session: Any, private_key: Any, certificate: x509.Certificate) -> None:
        from pkcs11 import KeyType

        self._session = session
        self._key = private_key
        self._lock = threading.Lock()
        self._certificate = certificate
        self._key_name = serial_hex(certificate)
        self._cert_b64 = cert_der_b64(certificate)
        key_type = private_key.key_type
        if key_type == KeyType.RSA:
            self._key_type = "rsa"
        elif key_type == KeyType.EC:
            self._key_type = "ec"
        else:
            raise SignatureError(KEY_MISMATCH, f"unsupported token key type {key_type}")

    @property
    def certificate(self) -> x509.Certificate:
        return self._certificate

    @property
    def key_name(self) -> str:
        return self._key_name

    @property
    def cert_b64(self) -> str:
        return self._cert_b64

    @property
    def key_type(self) -> str:
        return self._key_type

    def sign(self, data: bytes, signature_method: str) -> bytes:
        """PKCS#1 v1.5 on the token for RSA; ECDSA over a local digest (PKCS#11 returns r||s)."""
        from pkcs11 import Mechanism
        from pkcs11.exceptions import PKCS11Error

        hash_cls = method_for(signature_method, self._key_type)
        try:
            with self._lock:
                if self._key_type == "rsa":
                    mechanism = _RSA_MECHANISMS.get(hash_cls)
                    if mechanism is None:
                        raise SignatureError(ALGORITHM, f"no PKCS#11 mechanism for {hash_cls.name}")
                    return bytes(self._key.sign(data, mechanism=getattr(Mechanism, mechanism)))
                digest = hashes.Hash(hash_cls())
                digest.update(data)
                return bytes(self._key.sign(digest.finalize(), mechanism=Mechanism.ECDSA))
        except PKCS11Error as exc:
            raise SignatureError(
                KEY_MISMATCH, f"the token refused to sign: {type(exc).__name__} {exc}"
            ) from exc

    def close(self) -> None:
        """Close the token session."""
        with self._lock:
            self._session.close()

    def __repr__(self) -> str:
        return f"Pkcs11Key(key_name={self._key_name!r}, key_type={self._key_type!r})"


_RSA_MECHANISMS = {
    hashes.SHA1: "SHA1_RSA_PKCS",
    hashes.SHA256: "SHA256_RSA_PKCS",
    hashes.SHA384: "SHA384_RSA_PKCS",
    hashes.SHA512: "SHA512_RSA_PKCS",
}


def open_pkcs11(
    library: str | os.PathLike[str],
    token_label: str,
    key_label: str,
    *,
    pin: str | None = None,
    pin_env: str | None = None,
    pin_file: str | os.PathLike[str] | None = None,
    cert_path: str | os.PathLike[str] | None = None,
) -> Pkcs11Key:
    """Log in to a token and find the private key `key_label` and its certificate (from
    `cert_path`, else the token's certificate object with the same label or CKA_ID)."""
    import pkcs11
    from pkcs11 import ObjectClass

    user_pin = read_secret(pin, env=pin_env, file=pin_file, what="PKCS#11 PIN")
    try:
        token = _pkcs11_lib(os.fspath(library)).get_token(token_label=token_label)
        session = token.open(user_pin=user_pin.decode() if user_pin is not None else None)
    except pkcs11.PKCS11Error as exc:
        raise SignatureError(
            KEY_MISMATCH, f"cannot open PKCS#11 token {token_label!r}: {type(exc).__name__} {exc}"
        ) from exc
    try:
        private_key = session.get_key(object_class=ObjectClass.PRIVATE_KEY, label=key_label)
        if cert_path is not None:
            certificate = x509.load_pem_x509_certificate(Path(cert_path).read_bytes())
        else:
            certificate = _token_certificate(session, key_label, private_key)
        key = Pkcs11Key(session, private_key, certificate)
        _check_pair(session, private_key, certificate, key_label)
    except pkcs11.PKCS11Error as exc:
        session.close()
        raise SignatureError(
            KEY_MISMATCH, f"key {key_label!r} on token {token_label!r}: {type(exc).__name__} {exc}"
        ) from exc
    except BaseException:
        session.close()
        raise
    return key


def _token_certificate(session: Any, label: str, private_key: Any) -> x509.Certificate:
    """The certificate object stored next to the key (same label, else same CKA_ID)."""
    from pkcs11 import Attribute, ObjectClass

    for attrs in ({Attribute.LABEL: label}, {Attribute.ID: private_key.id}):
        for obj in session.get_objects({Attribute.CLASS: ObjectClass.CERTIFICATE, **attrs}):
            return x509.load_der_x509_certificate(bytes(obj[Attribute.VALUE]))
    raise SignatureError(CERTIFICATE, f"no certificate for key {label!r} on the token")


def _check_pair(session: Any, private_key: Any, cert: x509.Certificate, label: str) -> None:
    """The token's public key (same CKA_ID) must be the certificate's, when the token has it."""
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
    from pkcs11 import Attribute, KeyType, ObjectClass

    query = {Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.ID: private_key.id}
    for pub in session.get_objects(query):
        cert_key = cert.public_key()
        if pub.key_type == KeyType.RSA and isinstance(cert_key, rsa.RSAPublicKey):
            numbers = cert_key.public_numbers()
            same = (
                int.from_bytes(pub[Attribute.MODULUS], "big") == numbers.n
                and int.from_bytes(pub[Attribute.PUBLIC_EXPONENT], "big") == numbers.e
            )
        elif pub.key_type == KeyType.EC and isinstance(cert_key, ec.EllipticCurvePublicKey):
            point = cert_key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)
            same = bytes(pub[Attribute.EC_POINT]).endswith(point)
        else:
            same = False
        if not same:
            raise SignatureError(
                KEY_MISMATCH, f"token key {label!r} does not match certificate {serial_hex(cert)}"
            )
        return
