"""Signature failures with stable codes, so callers can map them to receipts and metrics.

One exception class, `SignatureError`; its `code` is one of:

- signature.missing: the message carries no ds:Signature.
- signature.malformed: the Signature is not the shape XML-DSig requires (missing parts, bad
  base64), the root is not a document element, or signing a message that is already signed.
- signature.wrapping: a structure that could make us verify one thing and read another: more
  than one Signature, Signature not the last child of the root, Reference URI not "", more
  than one Reference, transforms other than enveloped-signature (+ C14N 1.0), ds:Object,
  ds:RetrievalMethod, a comment splitting the text of an element (C14N drops it, so a reader
  that stops at the comment sees another value than the one signed).
- signature.algorithm: canonicalization, signature or digest method unknown or not allowed by
  the policy.
- signature.key_mismatch: the SignatureMethod needs another key type than the certificate (or
  signing key) has; e.g. the official samples name SM2/SM3 but embed an RSA certificate.
- signature.certificate: the embedded certificate is missing or cannot be parsed.
- signature.untrusted: the certificate is not in the trust store nor issued by a trusted CA.
- signature.unregistered: the certificate is trusted, but its key is not one registered for
  the sender (verify_enveloped's `registered_keys`).
- signature.expired: the certificate (or its CA) is not valid at the verification time.
- signature.revoked: the certificate (or its CA) is trusted, but its serial is on the trust
  store's revocation list.
- signature.invalid: SignatureValue does not verify over SignedInfo with the certificate key.
- signature.digest_mismatch: SignedInfo is authentic but the message content was changed.
"""

from __future__ import annotations

MISSING = "signature.missing"
MALFORMED = "signature.malformed"
WRAPPING = "signature.wrapping"
ALGORITHM = "signature.algorithm"
DIGEST_MISMATCH = "signature.digest_mismatch"
INVALID = "signature.invalid"
CERTIFICATE = "signature.certificate"
UNTRUSTED = "signature.untrusted"
EXPIRED = "signature.expired"
REVOKED = "signature.revoked"
UNREGISTERED = "signature.unregistered"
KEY_MISMATCH = "signature.key_mismatch"

CODES: frozenset[str] = frozenset(
    {
        MISSING,
        MALFORMED,
        WRAPPING,
        ALGORITHM,
        DIGEST_MISMATCH,
        INVALID,
        CERTIFICATE,
        UNTRUSTED,
        EXPIRED,
        REVOKED,
        UNREGISTERED,
        KEY_MISMATCH,
    }
)


class SignatureError(Exception):
    """Any signing or verification failure; `code` is stable, str() is the English reason."""

    def __init__(self, code: str, reason: str) -> None:
        if code not in CODES:
            raise ValueError(f"unknown signature error code {code!r}")
        super().__init__(reason)
        self.code = code
        self.reason = reason

    def __str__(self) -> str:
        return self.reason

    def __repr__(self) -> str:
        return f"SignatureError({self.code!r}, {self.reason!r})"
