"""signxml as the cryptographic verifier for RSA and ECDSA signatures (not SM2: signxml has none).

Called by `verify_enveloped` after our own structural checks (one Signature, last child,
URI="", enveloped transform only, no Object / RetrievalMethod), the algorithm policy, the
certificate's trust and the sender's registered keys. signxml then verifies SignatureValue
and the digest with exactly the already-trusted certificate and a configuration that allows
only the one signature method and digest we have checked. Its exceptions are translated to
our SignatureError codes here, at the boundary; nothing of signxml leaks to callers.
"""

from __future__ import annotations

import datetime as dt

from cryptography import x509
from lxml import etree
from signxml import (  # type: ignore[import-untyped]
    DigestAlgorithm,
    InvalidCertificate,
    InvalidDigest,
    InvalidInput,
    InvalidSignature,
    SignatureConfiguration,
    SignatureMethod,
    XMLVerifier,
)
from signxml.exceptions import SignXMLException  # type: ignore[import-untyped]

from signing.errors import (
    ALGORITHM,
    CERTIFICATE,
    DIGEST_MISMATCH,
    EXPIRED,
    INVALID,
    MALFORMED,
    SignatureError,
)


def _config(
    signature_method: str, digest_method: str, at: dt.datetime | None
) -> SignatureConfiguration:
    try:
        method = SignatureMethod(signature_method)
        digest = DigestAlgorithm(digest_method)
    except (ValueError, InvalidInput) as exc:
        raise SignatureError(ALGORITHM, f"signxml does not support {exc}") from exc
    return SignatureConfiguration(
        require_x509=True,
        location="./",  # the Signature is a child of the document element, nowhere else
        expect_references=1,
        signature_methods=frozenset({method}),
        digest_algorithms=frozenset({digest}),
        verification_time=at,
    )


def verify_with_signxml(
    root: etree._Element,
    certificate: x509.Certificate,
    signature_method: str,
    digest_method: str,
    *,
    at: dt.datetime | None = None,
) -> bytes:
    """Verify the enveloped signature of `root` with `certificate`; return the signed bytes
    (canonical document without the Signature), or raise SignatureError."""
    config = _config(signature_method, digest_method, at)
    try:
        result = XMLVerifier().verify(root, x509_cert=certificate, expect_config=config)
    except InvalidDigest as exc:
        raise SignatureError(
            DIGEST_MISMATCH,
            f"the message content does not match the signed digest (modified?): {exc}",
        ) from None
    except InvalidCertificate as exc:
        code = EXPIRED if "valid" in str(exc).lower() else CERTIFICATE
        raise SignatureError(code, f"certificate rejected: {exc}") from None
    except InvalidSignature as exc:
        raise SignatureError(
            INVALID,
            f"the signature value does not verify over SignedInfo with the embedded key: {exc}",
        ) from None
    except (InvalidInput, SignXMLException, ValueError, etree.LxmlError) as exc:
        # signxml lets lxml's own errors out: DocumentInvalid from its XML-DSig schema check
        # (a SignatureValue that is not base64), C14NError (found by fuzzing).
        raise SignatureError(MALFORMED, f"signature rejected by signxml: {exc}") from None
    if not isinstance(result.signed_data, bytes) or not result.signed_data:
        raise SignatureError(MALFORMED, "signxml returned no signed data")
    return result.signed_data
