"""Edge library: enveloped XML-DSig for CEB messages (independent of the gateway package)."""

from signing.errors import SignatureError
from signing.keys import SigningKey, TrustStore, generate_test_identity, load_signing_key
from signing.policy import (
    ECDSA_SHA256,
    RSA_SHA1_LEGACY,
    RSA_SHA256,
    SignaturePolicy,
    policy_by_name,
)
from signing.xmldsig import VerifiedMessage, remove_signature, sign_enveloped, verify_enveloped

__all__ = [
    "ECDSA_SHA256",
    "RSA_SHA1_LEGACY",
    "RSA_SHA256",
    "SignatureError",
    "SignaturePolicy",
    "SigningKey",
    "TrustStore",
    "VerifiedMessage",
    "generate_test_identity",
    "load_signing_key",
    "policy_by_name",
    "remove_signature",
    "sign_enveloped",
    "verify_enveloped",
]
