"""Edge library: enveloped XML-DSig for CEB messages (independent of the gateway package)."""

from signing.errors import SignatureError
from signing.keys import (
    KeyProvider,
    SigningKey,
    TrustStore,
    generate_test_identity,
    load_signing_key,
)
from signing.policy import (
    ECDSA_SHA256,
    RSA_SHA1_LEGACY,
    RSA_SHA256,
    SM2_SM3,
    SignaturePolicy,
    default_policy_for_key_type,
    policy_by_name,
)
from signing.providers import Pkcs11Key, load_pkcs12, open_pkcs11
from signing.xmldsig import VerifiedMessage, remove_signature, sign_enveloped, verify_enveloped

__all__ = [
    "ECDSA_SHA256",
    "RSA_SHA1_LEGACY",
    "RSA_SHA256",
    "SM2_SM3",
    "KeyProvider",
    "Pkcs11Key",
    "SignatureError",
    "SignaturePolicy",
    "SigningKey",
    "TrustStore",
    "VerifiedMessage",
    "default_policy_for_key_type",
    "generate_test_identity",
    "load_pkcs12",
    "load_signing_key",
    "open_pkcs11",
    "policy_by_name",
    "remove_signature",
    "sign_enveloped",
    "verify_enveloped",
]
