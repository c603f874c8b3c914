"""Which XML-DSig algorithms we produce and accept, named so configuration can pick one.

Policies are chosen per counterparty in configuration (there is no global switch):
sm2-sm3 (every e-port key card since 2022 and the official 2022-05 samples), rsa-sha256,
rsa-sha1-legacy (old cards: verify, and sign where a counterparty still requires it) and
ecdsa-sha256 (P-256). `default_policy_for_key_type` gives a new organisation's default.
"""

from __future__ import annotations

from dataclasses import dataclass

# Canonicalization
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
# Transforms
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
# Digests
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"
SM3 = "http://www.chinaport.gov.cn/2022/04/xmldsig#sm3"
# Signature methods
RSA_SHA1_URI = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
RSA_SHA256_URI = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA384_URI = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
RSA_SHA512_URI = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
ECDSA_SHA1_URI = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1"
ECDSA_SHA256_URI = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ECDSA_SHA384_URI = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
ECDSA_SHA512_URI = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
SM2_SM3_URI = "http://www.chinaport.gov.cn/2022/04/xmldsig#sm2-sm3"


@dataclass(frozen=True)
class SignaturePolicy:
    """What we sign with (first three URIs) and what a verifier accepts (the allowed sets)."""

    name: str
    signature_method: str
    digest_method: str
    c14n: str
    allowed_signature_methods: frozenset[str]
    allowed_digest_methods: frozenset[str]
    # How an SM2 SignatureValue is written: "raw" r||s (64 bytes) or "der" (GM/T 0009).
    # Verification accepts both. Ignored by the other methods.
    sm2_signature_encoding: str = "raw"


RSA_SHA256 = SignaturePolicy(
    name="rsa-sha256",
    signature_method=RSA_SHA256_URI,
    digest_method=SHA256,
    c14n=C14N,
    allowed_signature_methods=frozenset({RSA_SHA256_URI, ECDSA_SHA256_URI}),
    allowed_digest_methods=frozenset({SHA256}),
)

ECDSA_SHA256 = SignaturePolicy(
    name="ecdsa-sha256",
    signature_method=ECDSA_SHA256_URI,
    digest_method=SHA256,
    c14n=C14N,
    allowed_signature_methods=frozenset({RSA_SHA256_URI, ECDSA_SHA256_URI}),
    allowed_digest_methods=frozenset({SHA256}),
)

RSA_SHA1_LEGACY = SignaturePolicy(
    name="rsa-sha1-legacy",
    signature_method=RSA_SHA1_URI,
    digest_method=SHA1,
    c14n=C14N,
    allowed_signature_methods=frozenset({RSA_SHA1_URI}),
    allowed_digest_methods=frozenset({SHA1}),
)

SM2_SM3 = SignaturePolicy(
    name="sm2-sm3",
    signature_method=SM2_SM3_URI,
    digest_method=SM3,
    c14n=C14N,
    allowed_signature_methods=frozenset({SM2_SM3_URI}),
    allowed_digest_methods=frozenset({SM3}),
)

# The same as rsa-sha256 with exclusive C14N, for counterparties that canonicalize so.
RSA_SHA256_EXC = SignaturePolicy(
    name="rsa-sha256-exc-c14n",
    signature_method=RSA_SHA256_URI,
    digest_method=SHA256,
    c14n=EXC_C14N,
    allowed_signature_methods=frozenset({RSA_SHA256_URI, ECDSA_SHA256_URI}),
    allowed_digest_methods=frozenset({SHA256}),
)

POLICIES: dict[str, SignaturePolicy] = {
    p.name: p for p in (SM2_SM3, RSA_SHA256, RSA_SHA256_EXC, ECDSA_SHA256, RSA_SHA1_LEGACY)
}

_DEFAULT_FOR_KEY_TYPE = {"sm2": SM2_SM3, "rsa": RSA_SHA256, "ec": ECDSA_SHA256}


def default_policy_for_key_type(key_type: str) -> SignaturePolicy:
    """The policy a new organisation gets for its key: SM2 -> sm2-sm3, RSA -> rsa-sha256,
    EC P-256 -> ecdsa-sha256 (legacy RSA-SHA1 is only ever chosen explicitly)."""
    try:
        return _DEFAULT_FOR_KEY_TYPE[key_type]
    except KeyError:
        raise ValueError(f"no default signature policy for key type {key_type!r}") from None


def policy_by_name(name: str) -> SignaturePolicy:
    """Resolve a configured policy name ("rsa-sha256", "RSA_SHA1_LEGACY", ...) or fail loudly."""
    key = name.strip().lower().replace("_", "-")
    try:
        return POLICIES[key]
    except KeyError:
        known = ", ".join(sorted(POLICIES))
        raise ValueError(f"unknown signature policy {name!r} (known: {known})") from None
