"""Enveloped XML-DSig for CEB messages on lxml + cryptography: one C14N, one digest, one signature.

Scope is deliberately narrow (that is what makes it safe): one Signature, last child of the
document element, one Reference with URI="" and the enveloped-signature transform.

Signing is always our lean signer (the hot path, and the only one that does SM2/SM3); it
signs through any `KeyProvider` (PEM, PKCS#12, PKCS#11 token). Verification runs our
structural checks first (wrapping, algorithms against the policy, certificate, trust, the
sender's registered keys), then the cryptographic check: by default our own (one C14N of
SignedInfo, one raw signature check, one C14N and digest of the content: a third of
signxml's cost, measured), or `engine="signxml"` for RSA and ECDSA (the maintained library
re-checks the same bytes; SM2/SM3, which it does not know, stay with our code). Both run
the whole signature-wrapping matrix (tests/integration/test_signature_wrapping.py).
Whatever the engine, failures are SignatureError with the codes of signing.errors.
"""

from __future__ import annotations

import base64
import binascii
import copy
import datetime as dt
import functools
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import (
    encode_dss_signature,
)
from cryptography.x509.oid import PublicKeyAlgorithmOID
from lxml import etree

from signing import sm2
from signing.errors import (
    ALGORITHM,
    CERTIFICATE,
    DIGEST_MISMATCH,
    INVALID,
    KEY_MISMATCH,
    MALFORMED,
    MISSING,
    UNREGISTERED,
    WRAPPING,
    SignatureError,
)
from signing.keys import (
    KEY_TYPE_NAMES,
    METHODS,
    KeyProvider,
    TrustStore,
    certificate_spki,
    serial_hex,
)
from signing.policy import (
    C14N,
    ENVELOPED,
    EXC_C14N,
    RSA_SHA256,
    SHA1,
    SHA256,
    SHA384,
    SHA512,
    SM2_SM3_URI,
    SM3,
    SignaturePolicy,
)

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
EXC_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"
_XML_PREFIX = "{http://www.w3.org/XML/1998/namespace}"

_DIGESTS: dict[str, type[hashes.HashAlgorithm]] = {
    SHA1: hashes.SHA1,
    SHA256: hashes.SHA256,
    SHA384: hashes.SHA384,
    SHA512: hashes.SHA512,
    SM3: hashes.SM3,
}

ENGINES = ("lean", "signxml")

# Re-parsing our own canonical bytes: no DTD, no entities, no network.
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _q(local: str) -> str:
    """Clark name in the XML-DSig namespace."""
    return f"{{{DS_NS}}}{local}"


SIGNATURE_TAG = _q("Signature")


@dataclass(frozen=True)
class VerifiedMessage:
    """What downstream may trust: the signed document exactly as digested, and who signed it."""

    root: etree._Element
    certificate: x509.Certificate
    key_name: str
    signature_method: str


@dataclass(frozen=True)
class _ParsedSignature:
    """The pieces of a ds:Signature we act on, after structural checks."""

    signed_info: etree._Element
    c14n_method: str
    inclusive_prefixes: tuple[str, ...] | None
    signature_method: str
    digest_method: str
    digest_value: bytes
    signature_value: bytes
    cert_b64: str


# --------------------------------------------------------------------------- helpers


def _require_document_element(root: etree._Element) -> None:
    """URI="" means the whole document, so we only sign/verify the document element itself."""
    if not isinstance(root, etree._Element) or not isinstance(root.tag, str):
        raise SignatureError(MALFORMED, "expected an lxml element as the message root")
    if root.getparent() is not None:
        raise SignatureError(
            MALFORMED, 'the message root must be the document element (URI="" signs the document)'
        )


def _elements(parent: etree._Element) -> list[etree._Element]:
    """Element children only (comments and PIs are not part of the structure)."""
    return [child for child in parent if isinstance(child.tag, str)]


def _last_element_child(root: etree._Element) -> etree._Element | None:
    """The last child element of root, skipping trailing comments / PIs."""
    for child in root.iterchildren(reversed=True):
        if isinstance(child.tag, str):
            return child
    return None


def _detach(node: etree._Element) -> None:
    """Remove a node but keep its tail text in the document, as the enveloped transform does."""
    parent = node.getparent()
    if parent is None:
        return
    tail, node.tail = node.tail, None
    previous = node.getprevious()
    parent.remove(node)
    if tail:
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail


def _canonical_document(tree: etree._ElementTree) -> bytes:
    """C14N 1.0, without comments, of the whole document (what URI="" dereferences to)."""
    return etree.tostring(tree, method="c14n", exclusive=False, with_comments=False)


def _inherited_xml_attributes(element: etree._Element) -> dict[str, str]:
    """xml:* attributes in scope from ancestors, which C14N 1.0 copies onto a subset's apex."""
    found: dict[str, str] = {}
    for ancestor in element.iterancestors():
        for name, value in ancestor.attrib.items():
            if name.startswith(_XML_PREFIX) and name not in found and name not in element.attrib:
                found[name] = value
    return found


def _canonical_signed_info(
    signed_info: etree._Element, method: str, prefixes: tuple[str, ...] | None = None
) -> bytes:
    """Canonicalize SignedInfo in its document so inherited namespaces and xml:* count."""
    exclusive = method == EXC_C14N
    # lxml's subtree C14N includes inherited namespaces but not inherited xml:lang/space/base,
    # which inclusive C14N 1.0 (and xmlsec1) put on the apex: add them for the duration.
    inherited = {} if exclusive else _inherited_xml_attributes(signed_info)
    signed_info.attrib.update(inherited)
    try:
        return etree.tostring(
            signed_info,
            method="c14n",
            exclusive=exclusive,
            with_comments=False,
            inclusive_ns_prefixes=list(prefixes) if prefixes else None,
        )
    finally:
        for name in inherited:
            del signed_info.attrib[name]


def _b64(data: bytes) -> str:
    """Base64 without line breaks (allowed by XML-DSig, and what xmlsec1 accepts)."""
    return base64.b64encode(data).decode("ascii")


def _b64decode(text: str | None, what: str) -> bytes:
    """Strict base64 (whitespace tolerated) with a clear error."""
    compact = "".join((text or "").split())
    if not compact:
        raise SignatureError(MALFORMED, f"{what} is empty")
    try:
        return base64.b64decode(compact, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(MALFORMED, f"{what} is not valid base64: {exc}") from exc


def _digest(method: str, data: bytes) -> bytes:
    """Hash the canonical bytes with the DigestMethod algorithm."""
    hasher = hashes.Hash(_DIGESTS[method]())
    hasher.update(data)
    return hasher.finalize()


def _cert_key_family(cert: x509.Certificate) -> str:
    """Key type from the SubjectPublicKeyInfo, so SM2 keys are classified without loading."""
    if sm2.is_sm2_certificate(cert):
        return "sm2"
    oid = cert.public_key_algorithm_oid
    if oid == PublicKeyAlgorithmOID.RSAES_PKCS1_v1_5:
        return "rsa"
    if oid == PublicKeyAlgorithmOID.EC_PUBLIC_KEY:
        return "ec"
    return oid.dotted_string


def _describe_cert_key(cert: x509.Certificate) -> str:
    """E.g. 'RSA-1024' for messages about a mismatched key."""
    if _cert_key_family(cert) == "sm2":
        return "SM2"
    try:
        key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return KEY_TYPE_NAMES.get(_cert_key_family(cert), _cert_key_family(cert))
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA-{key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"EC {key.curve.name}"
    return type(key).__name__


# --------------------------------------------------------------------------- signing


def _sub(
    parent: etree._Element, local: str, text: str | None = None, **attrs: str
) -> etree._Element:
    """Append a ds: child element."""
    child = etree.SubElement(parent, _q(local), attrs)
    child.text = text
    return child


def _build_signature(
    root: etree._Element, key: KeyProvider, policy: SignaturePolicy, digest_b64: str
) -> tuple[etree._Element, etree._Element, etree._Element]:
    """Append the ds:Signature skeleton; returns (Signature, SignedInfo, SignatureValue)."""
    signature = etree.SubElement(root, SIGNATURE_TAG, nsmap={"ds": DS_NS})
    signed_info = _sub(signature, "SignedInfo")
    _sub(signed_info, "CanonicalizationMethod", Algorithm=policy.c14n)
    _sub(signed_info, "SignatureMethod", Algorithm=policy.signature_method)
    reference = _sub(signed_info, "Reference", URI="")
    transforms = _sub(reference, "Transforms")
    _sub(transforms, "Transform", Algorithm=ENVELOPED)
    _sub(reference, "DigestMethod", Algorithm=policy.digest_method)
    _sub(reference, "DigestValue", digest_b64)
    signature_value = _sub(signature, "SignatureValue")
    key_info = _sub(signature, "KeyInfo")
    _sub(key_info, "KeyName", key.key_name)
    x509_data = _sub(key_info, "X509Data")
    _sub(x509_data, "X509Certificate", key.cert_b64)
    return signature, signed_info, signature_value


def _check_signing_policy(policy: SignaturePolicy) -> None:
    """Fail before touching the document if the policy names something we cannot produce."""
    if policy.c14n not in (C14N, EXC_C14N):
        raise SignatureError(ALGORITHM, f"canonicalization {policy.c14n} is not supported")
    if policy.digest_method not in _DIGESTS:
        raise SignatureError(ALGORITHM, f"digest method {policy.digest_method} is not supported")
    if policy.signature_method not in METHODS:
        raise SignatureError(
            ALGORITHM, f"signature method {policy.signature_method} is not supported for signing"
        )


def sign_enveloped(
    root: etree._Element, key: KeyProvider, policy: SignaturePolicy = RSA_SHA256
) -> etree._Element:
    """Sign the whole document in place: append ds:Signature as the last child of root.

    `key` is any KeyProvider: a SigningKey (PEM / PKCS#12) or a PKCS#11 token key."""
    _require_document_element(root)
    if next(root.iter(SIGNATURE_TAG), None) is not None:
        raise SignatureError(
            MALFORMED, "document already contains a ds:Signature; remove it before re-signing"
        )
    _check_signing_policy(policy)
    family = METHODS[policy.signature_method][0]
    if key.key_type != family:
        raise SignatureError(
            KEY_MISMATCH,
            f"policy {policy.name} signs with {policy.signature_method}, which needs a "
            f"{KEY_TYPE_NAMES[family]} key, but the signing key is "
            f"{KEY_TYPE_NAMES.get(key.key_type, key.key_type)}",
        )
    digest = _digest(policy.digest_method, _canonical_document(root.getroottree()))
    signature, signed_info, signature_value = _build_signature(root, key, policy, _b64(digest))
    try:
        data = _canonical_signed_info(signed_info, policy.c14n)
        value = key.sign(data, policy.signature_method)
        if family == "sm2":
            value = sm2.encode_signature_value(value, policy.sm2_signature_encoding)
        signature_value.text = _b64(value)
    except BaseException:
        root.remove(signature)
        raise
    return root


def remove_signature(root: etree._Element) -> etree._Element | None:
    """Detach and return a trailing ds:Signature, so a submitted message can be re-signed."""
    last = _last_element_child(root)
    if last is None or last.tag != SIGNATURE_TAG:
        return None
    _detach(last)
    return last


# --------------------------------------------------------------------------- verification


def _locate_signature(root: etree._Element) -> etree._Element:
    """Exactly one ds:Signature, and it must be the last element child of the document element."""
    signatures = list(root.iter(SIGNATURE_TAG))
    if not signatures:
        raise SignatureError(MISSING, "the message carries no ds:Signature")
    if len(signatures) > 1:
        raise SignatureError(
            WRAPPING, f"expected exactly one ds:Signature, found {len(signatures)}"
        )
    signature = signatures[0]
    if signature.getparent() is not root or _last_element_child(root) is not signature:
        raise SignatureError(
            WRAPPING, "ds:Signature must be the last child element of the message root"
        )
    return signature


def _reject_split_text(root: etree._Element) -> None:
    """No comment (or PI) with text on either side inside an element: C14N drops it, so the
    digest holds while a reader that stops at the comment (lxml's .text, a DOM's firstChild)
    reads another value than the one signed (e.g. returnStatus "1<!---->00" reads "1")."""
    for node in root.iter(etree.Comment, etree.ProcessingInstruction):
        parent = node.getparent()
        if parent is None:
            continue
        previous = node.getprevious()
        before = parent.text if previous is None else previous.tail
        if (before or "").strip() or (node.tail or "").strip():
            raise SignatureError(
                WRAPPING,
                f"a comment or processing instruction splits the text of "
                f"{etree.QName(parent).localname}; what is read could differ from what is signed",
            )


def _expect_children(parent: etree._Element, expected: list[str]) -> dict[str, etree._Element]:
    """Element children must be exactly the `expected` ds: elements, in order."""
    children = _elements(parent)
    names = [
        etree.QName(c).localname if c.tag.startswith(f"{{{DS_NS}}}") else c.tag for c in children
    ]
    if names != expected:
        local = etree.QName(parent).localname
        raise SignatureError(
            MALFORMED,
            f"ds:{local} must contain {', '.join('ds:' + n for n in expected)} in that order; "
            f"found {', '.join(names) or 'nothing'}",
        )
    return dict(zip(names, children, strict=True))


def _reject_foreign_nodes(signature: etree._Element) -> None:
    """No comments / PIs inside the signature: they could split text we read."""
    for node in signature.iter():
        if not isinstance(node.tag, str):
            raise SignatureError(
                MALFORMED, "comments or processing instructions inside ds:Signature"
            )


def _check_signature_children(signature: etree._Element) -> dict[str, etree._Element]:
    """Signature = SignedInfo, SignatureValue, KeyInfo; ds:Object is a wrapping vector."""
    names = [etree.QName(c).localname for c in _elements(signature)]
    if "Object" in names:
        raise SignatureError(WRAPPING, "ds:Object is not allowed in a CEB signature")
    if names == ["SignedInfo", "SignatureValue"]:
        raise SignatureError(CERTIFICATE, "ds:Signature has no ds:KeyInfo with the certificate")
    return _expect_children(signature, ["SignedInfo", "SignatureValue", "KeyInfo"])


def _check_signed_info(signed_info: etree._Element) -> etree._Element:
    """SignedInfo holds exactly one Reference; more would let an attacker point elsewhere."""
    children = _elements(signed_info)
    references = [c for c in children if c.tag == _q("Reference")]
    if len(references) != 1:
        raise SignatureError(
            WRAPPING, f"expected exactly one ds:Reference, found {len(references)}"
        )
    _expect_children(signed_info, ["CanonicalizationMethod", "SignatureMethod", "Reference"])
    return references[0]


def _algorithm(element: etree._Element | None, name: str) -> str:
    """The Algorithm attribute of ds:``name``, both required."""
    if element is None:  # e.g. the right local name in another namespace (found by fuzzing)
        raise SignatureError(MALFORMED, f"ds:{name} is missing")
    value = element.get("Algorithm")
    if not value:
        raise SignatureError(
            MALFORMED, f"ds:{etree.QName(element).localname} has no Algorithm attribute"
        )
    return value


def _c14n_method(signed_info: etree._Element) -> tuple[str, tuple[str, ...] | None]:
    """C14N 1.0 or exclusive C14N 1.0 (with an optional InclusiveNamespaces prefix list)."""
    element = signed_info.find(_q("CanonicalizationMethod"))
    method = _algorithm(element, "CanonicalizationMethod")
    if method not in (C14N, EXC_C14N):
        raise SignatureError(
            ALGORITHM,
            f"canonicalization {method} is not allowed (only C14N 1.0 or exclusive C14N 1.0)",
        )
    children = _elements(element)
    if method == C14N and children:
        raise SignatureError(MALFORMED, "C14N 1.0 CanonicalizationMethod takes no parameters")
    prefixes: tuple[str, ...] | None = None
    for child in children:
        if child.tag != f"{{{EXC_NS}}}InclusiveNamespaces":
            raise SignatureError(MALFORMED, f"unexpected {child.tag} in CanonicalizationMethod")
        prefixes = tuple(child.get("PrefixList", "").split())
    return method, prefixes


def _check_reference(reference: etree._Element) -> dict[str, etree._Element]:
    """URI="" and the enveloped transform: the signature covers the whole message, nothing else."""
    uri = reference.get("URI")
    if uri != "":
        shown = "absent" if uri is None else repr(uri)
        raise SignatureError(
            WRAPPING, f'ds:Reference URI must be "" (the whole message); it is {shown}'
        )
    parts = _elements(reference)
    if not parts or parts[0].tag != _q("Transforms"):
        raise SignatureError(
            WRAPPING,
            "ds:Reference has no Transforms; the enveloped-signature transform is required",
        )
    _check_transforms(parts[0])
    return _expect_children(reference, ["Transforms", "DigestMethod", "DigestValue"])


def _check_transforms(transforms: etree._Element) -> None:
    """Exactly enveloped-signature, optionally followed by C14N 1.0."""
    items = _elements(transforms)
    if any(t.tag != _q("Transform") or _elements(t) for t in items):
        raise SignatureError(WRAPPING, "ds:Transforms may only hold parameterless ds:Transform")
    algorithms = [t.get("Algorithm") for t in items]
    if algorithms not in ([ENVELOPED], [ENVELOPED, C14N]):
        raise SignatureError(
            WRAPPING,
            "unexpected transforms "
            f"{algorithms}; expected enveloped-signature (optionally followed by C14N 1.0)",
        )


def _certificate_text(key_info: etree._Element) -> str:
    """The single ds:X509Certificate in KeyInfo; we never fetch keys from elsewhere."""
    if key_info.find(_q("RetrievalMethod")) is not None:
        raise SignatureError(WRAPPING, "ds:RetrievalMethod (external key reference) is not allowed")
    certs = key_info.findall(f"{_q('X509Data')}/{_q('X509Certificate')}")
    if len(certs) != 1:
        raise SignatureError(
            CERTIFICATE,
            f"expected exactly one ds:KeyInfo/ds:X509Data/ds:X509Certificate, found {len(certs)}",
        )
    return certs[0].text or ""


def _parse_signature(signature: etree._Element) -> _ParsedSignature:
    """Structural checks (wrapping, malformed) and extraction; no crypto yet."""
    _reject_foreign_nodes(signature)
    parts = _check_signature_children(signature)
    signed_info = parts["SignedInfo"]
    reference = _check_signed_info(signed_info)
    ref_parts = _check_reference(reference)
    c14n_method, prefixes = _c14n_method(signed_info)
    return _ParsedSignature(
        signed_info=signed_info,
        c14n_method=c14n_method,
        inclusive_prefixes=prefixes,
        signature_method=_algorithm(signed_info.find(_q("SignatureMethod")), "SignatureMethod"),
        digest_method=_algorithm(ref_parts["DigestMethod"], "DigestMethod"),
        digest_value=_b64decode(ref_parts["DigestValue"].text, "ds:DigestValue"),
        signature_value=_b64decode(parts["SignatureValue"].text, "ds:SignatureValue"),
        cert_b64=_certificate_text(parts["KeyInfo"]),
    )


@functools.lru_cache(maxsize=256)
def _load_cert_der(der: bytes) -> x509.Certificate:
    """Parse DER and read every field verification uses. cryptography parses fields lazily:
    a name it cannot read would otherwise raise ValueError later, deep in the trust check
    (found by fuzzing)."""
    cert = x509.load_der_x509_certificate(der)
    cert.issuer.public_bytes()
    cert.subject.public_bytes()
    _ = (cert.serial_number, cert.not_valid_before_utc, cert.not_valid_after_utc)
    _ = cert.extensions  # not the public key: an SM2 key is read by our own code
    return cert


def _parse_certificate(text: str) -> x509.Certificate:
    """Decode the embedded certificate, reporting junk as signature.certificate."""
    compact = "".join(text.split())
    try:
        der = base64.b64decode(compact, validate=True)
        return _load_cert_der(der)
    except Exception as exc:  # untrusted DER fails in many ways (ValueError, InvalidVersion,
        # DuplicateExtension, UnsupportedAlgorithm...; found by fuzzing)
        raise SignatureError(
            CERTIFICATE, f"the embedded ds:X509Certificate cannot be parsed: {exc}"
        ) from exc


def _check_signature_method(method: str, cert: x509.Certificate, policy: SignaturePolicy) -> None:
    """Known method, matching the certificate's key, and allowed by the policy (in that order)."""
    if method not in METHODS:
        raise SignatureError(ALGORITHM, f"unknown signature method {method}")
    family = METHODS[method][0]
    cert_family = _cert_key_family(cert)
    if cert_family != family:
        raise SignatureError(
            KEY_MISMATCH,
            f"SignatureMethod {method} requires an {KEY_TYPE_NAMES[family]} key, but the "
            f"embedded certificate (serial {serial_hex(cert)}) carries an "
            f"{_describe_cert_key(cert)} key",
        )
    if method not in policy.allowed_signature_methods:
        raise SignatureError(
            ALGORITHM, f"signature method {method} is not allowed by policy {policy.name}"
        )


def _check_digest_method(method: str, policy: SignaturePolicy) -> None:
    """Digest must be known and one the policy allows."""
    if method not in _DIGESTS:
        raise SignatureError(ALGORITHM, f"unknown digest method {method}")
    if method not in policy.allowed_digest_methods:
        raise SignatureError(
            ALGORITHM, f"digest method {method} is not allowed by policy {policy.name}"
        )


def _raw_verify(cert: x509.Certificate, method: str, signature: bytes, data: bytes) -> None:
    """Check SignatureValue over canonical SignedInfo with the certificate's key."""
    if method == SM2_SM3_URI:
        _sm2_verify(cert, signature, data)
        return
    try:
        public_key = cert.public_key()
    except (UnsupportedAlgorithm, ValueError) as exc:
        raise SignatureError(CERTIFICATE, f"unsupported certificate key: {exc}") from exc
    hash_cls = METHODS[method][1]
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(signature, data, padding.PKCS1v15(), hash_cls())
        elif isinstance(public_key, ec.EllipticCurvePublicKey):
            public_key.verify(_ecdsa_der(public_key, signature), data, ec.ECDSA(hash_cls()))
        else:
            raise SignatureError(KEY_MISMATCH, f"unsupported key {type(public_key).__name__}")
    except InvalidSignature:
        raise SignatureError(
            INVALID, "the signature value does not verify over SignedInfo with the embedded key"
        ) from None


def _sm2_verify(cert: x509.Certificate, signature: bytes, data: bytes) -> None:
    """SM2 with SM3 and the standard user id; SignatureValue raw r||s or DER."""
    try:
        public_key = sm2.sm2_public_key(cert)
    except sm2.SM2Error as exc:
        raise SignatureError(CERTIFICATE, f"unusable SM2 certificate key: {exc}") from exc
    try:
        raw = sm2.decode_signature_value(signature)
    except sm2.SM2Error as exc:
        raise SignatureError(INVALID, str(exc)) from exc
    if not public_key.verify(raw, data):
        raise SignatureError(
            INVALID, "the signature value does not verify over SignedInfo with the embedded key"
        )


def _ecdsa_der(public_key: ec.EllipticCurvePublicKey, raw: bytes) -> bytes:
    """XML-DSig ECDSA values are r||s of the curve size; cryptography wants DER."""
    size = (public_key.curve.key_size + 7) // 8
    if len(raw) != 2 * size:
        raise SignatureError(
            INVALID, f"ECDSA signature must be {2 * size} bytes (r||s), got {len(raw)}"
        )
    return encode_dss_signature(
        int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big")
    )


def _canonical(c14n: Callable[..., bytes], *args: Any) -> bytes:
    """A canonicalization of what was received; lxml's refusal (a relative namespace URI,
    found by fuzzing T5) is a malformed signature, not an error out of the verifier."""
    try:
        return c14n(*args)
    except etree.LxmlError as exc:
        raise SignatureError(MALFORMED, f"the signed XML cannot be canonicalized: {exc}") from None


def _signed_content(root: etree._Element, signature: etree._Element) -> bytes:
    """Canonical bytes of the document with the Signature removed (enveloped transform)."""
    _detach(signature)
    return _canonical_document(root.getroottree())


def _check_registered(
    cert: x509.Certificate, registered_keys: Iterable[x509.Certificate | bytes] | None
) -> None:
    """The certificate's public key must be one registered for the sender, when given."""
    if registered_keys is None:
        return
    allowed = {k if isinstance(k, bytes) else certificate_spki(k) for k in registered_keys}
    if certificate_spki(cert) not in allowed:
        raise SignatureError(
            UNREGISTERED,
            f"the key of certificate {cert.subject.rfc4514_string()!r} (serial "
            f"{serial_hex(cert)}) is not registered for this sender",
        )


def verify_enveloped(
    root: etree._Element,
    trust: TrustStore,
    policy: SignaturePolicy = RSA_SHA256,
    *,
    at: dt.datetime | None = None,
    registered_keys: Iterable[x509.Certificate | bytes] | None = None,
    engine: str = "lean",
) -> VerifiedMessage:
    """Verify or raise SignatureError; the result holds only what the signature covers.

    `registered_keys`: the sender's registered certificates (or SubjectPublicKeyInfo DER);
    when given, a trusted certificate with another key is refused (signature.unregistered).
    `engine`: "lean" (default) checks the signature with our own code, "signxml" checks
    RSA/ECDSA with signxml; SM2/SM3 always uses our own code."""
    if engine not in ENGINES:
        raise ValueError(f"unknown verification engine {engine!r} (known: {', '.join(ENGINES)})")
    _require_document_element(root)
    work = copy.deepcopy(root.getroottree()).getroot()  # private copy: we detach and annotate
    signature = _locate_signature(work)
    _reject_split_text(work)
    parsed = _parse_signature(signature)
    cert = _parse_certificate(parsed.cert_b64)
    _check_signature_method(parsed.signature_method, cert, policy)
    _check_digest_method(parsed.digest_method, policy)
    when = at or dt.datetime.now(dt.UTC)
    trust.is_trusted(cert, when)
    _check_registered(cert, registered_keys)
    # signxml canonicalizes SignedInfo detached from its document, dropping xml:* attributes
    # inherited from the root (xml:lang, xml:space), which C14N 1.0 and xmlsec1 keep: such
    # (rare) documents are checked by our own code, which follows the specification.
    if (
        engine == "signxml"
        and parsed.signature_method != SM2_SM3_URI
        and not _inherited_xml_attributes(parsed.signed_info)
    ):
        from signing.signxml_engine import verify_with_signxml

        content = verify_with_signxml(
            work, cert, parsed.signature_method, parsed.digest_method, at=when
        )
    else:
        signed_info = _canonical(
            _canonical_signed_info,
            parsed.signed_info,
            parsed.c14n_method,
            parsed.inclusive_prefixes,
        )
        _raw_verify(cert, parsed.signature_method, parsed.signature_value, signed_info)
        content = _canonical(_signed_content, work, signature)
        if not hmac.compare_digest(_digest(parsed.digest_method, content), parsed.digest_value):
            raise SignatureError(
                DIGEST_MISMATCH, "the message content does not match the signed digest (modified?)"
            )
    # Re-parse the canonical bytes: downstream sees exactly what was digested (no comments
    # splitting text, no unsigned nodes).
    return VerifiedMessage(
        root=etree.fromstring(content, _PARSER),
        certificate=cert,
        key_name=serial_hex(cert),
        signature_method=parsed.signature_method,
    )
