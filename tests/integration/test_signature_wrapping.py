"""T4 as one matrix: signature wrapping and policy cases against signed inbound messages for
a real declared declaration (customs' CEB622 receipt and the port's Arrival), judged by us
and by xmlsec1.

The genuine receipt says customs rejected the list (returnStatus 100), the genuine arrival
names its parcel; every case tries to make the gateway read something else (a release, 800,
or a bill, carrying a canary) or to pass a signature our policy does not allow. Each case
must be:

(a) refused by verify_enveloped with its own reason code (signing/errors.py);
(b) compared with xmlsec1 (when installed): where xmlsec1 says the signature is valid, the
    case is a wrap or a policy breach that only structure or policy stops, and that is
    asserted, so a case whose signature is merely broken cannot pass for a wrap;
(c) POSTed to /api/v1/receipts (or /api/v1/port/events): a 4xx problem naming that code,
    never 2xx or 5xx;
(d) without effect: the declaration, its timeline, receipts, port events and inbound
    messages are as before, and the canary is nowhere in the database.

No reference may be fetched: an http canary listener and a file: canary (a FIFO, whose
opening is seen) count every attempt. The genuine message is sent last and must apply, so
the checks above can see one that gets through.
"""

from __future__ import annotations

import base64
import copy
import datetime as dt
import hashlib
import hmac
import os
import shutil
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from flask.testing import FlaskClient
from lxml import etree
from sqlalchemy import select

from adapters.dxp import Envelope, build_envelope
from gateway import create_app
from gateway.bootstrap import build_runtime
from gateway.examples import fresh_ceb621
from gateway.persistence import repository as repo
from gateway.persistence import tables as t
from gateway.provisioning import sandbox_key_paths
from gateway.services.declare import declare
from gateway.services.runtime import Runtime
from gateway.settings import Settings
from sandbox.receipts import inventory_return
from schemas.registry import CEB_NS, PORT_NS
from signing import RSA_SHA256, SignatureError, SigningKey, TrustStore, verify_enveloped
from signing.keys import build_self_signed, load_signing_key, signing_key_from
from signing.policy import C14N, ENVELOPED, RSA_SHA1_URI, RSA_SHA256_URI, SHA1, SHA256
from signing.xmldsig import ENGINES
from tests.unit.test_parsing import Listener

DS = "http://www.w3.org/2000/09/xmldsig#"
HMAC_SHA256_URI = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
XMLSEC1 = shutil.which("xmlsec1")
NOW = dt.datetime.now(dt.UTC).replace(microsecond=0)
GENUINE_CODE, EVIL_CODE = "100", "800"
CANARY = "TAMPERED-" + uuid.uuid4().hex[:12].upper()
MIN_CASES = 20


def _q(ns: str, local: str) -> str:
    return f"{{{ns}}}{local}"


# ------------------------------------------------------------------ identities


def _rsa() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _pem(directory: Path, name: str, cert: x509.Certificate) -> Path:
    path = directory / f"{name}.pem"
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _ca(name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    """A CA that may issue signer certificates (two of them may share a name)."""
    key = _rsa()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - dt.timedelta(days=30))
        .not_valid_after(NOW + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    return key, cert


def _issued(
    ca: tuple[rsa.RSAPrivateKey, x509.Certificate], name: str, days_from: int, days_to: int
) -> SigningKey:
    """A signer certificate issued by `ca`, valid from/to days relative to now."""
    ca_key, ca_cert = ca
    key = _rsa()
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW + dt.timedelta(days=days_from))
        .not_valid_after(NOW + dt.timedelta(days=days_to))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    return signing_key_from(key, cert, name)


@dataclass(frozen=True)
class Pki:
    """Everyone but the authority: a CA the gateway trusts and what it issued, and
    impostors (another CA with the same name, a self-signed key with the authority's name)."""

    ca_cert: x509.Certificate
    ca_pem: Path
    issued: SigningKey
    expired: SigningKey
    revoked: SigningKey
    rogue: SigningKey
    impostor: SigningKey


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory = tmp_path_factory.mktemp("t4-pki")
    ca = _ca("Authorities CA (TEST)")
    rogue_ca = _ca("Authorities CA (TEST)")  # the same name, another key
    revoked = _issued(ca, "Customs signer, revoked (TEST)", -10, 300)
    impostor_key = _rsa()
    impostor = signing_key_from(
        impostor_key,
        build_self_signed(
            "Sandbox customs authority (TEST)", impostor_key, NOW - dt.timedelta(days=1),
            NOW + dt.timedelta(days=300),
        ),
        "impostor",
    )  # fmt: skip
    return Pki(
        ca_cert=ca[1],
        ca_pem=_pem(directory, "ca", ca[1]),
        issued=_issued(ca, "Customs signer (TEST)", -10, 300),
        expired=_issued(ca, "Customs signer, expired (TEST)", -400, -10),
        revoked=revoked,
        rogue=_issued(rogue_ca, "Customs signer (TEST)", -10, 300),
        impostor=impostor,
    )


# ------------------------------------------------------------------ canaries


class FileCanary:
    """A FIFO behind a file: URI. Opening it for reading is what a fetch does, and it is
    seen: a thread blocks opening the write end and counts every open of the read end."""

    def __init__(self, directory: Path) -> None:
        self.path = directory / "canary-receipt.xml"
        os.mkfifo(self.path)
        self.opened = 0
        self._closing = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._closing:
            fd = os.open(self.path, os.O_WRONLY)  # returns once someone opens it to read
            if self._closing:
                os.close(fd)
                return
            self.opened += 1
            os.write(fd, b"<x/>")
            os.close(fd)
            self._wait_for_the_reader_to_leave()

    def _wait_for_the_reader_to_leave(self) -> None:
        """A write end opens at once while that reader still holds the FIFO: wait until it
        has gone, so one fetch counts once and reads one document."""
        while not self._closing:
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_NONBLOCK)
            except OSError:  # ENXIO: no reader any more
                return
            os.close(fd)
            time.sleep(0.01)

    def close(self) -> int:
        """Stop watching and return how many times the file was opened."""
        self._closing = True
        fd = os.open(self.path, os.O_RDONLY | os.O_NONBLOCK)  # wakes the writer thread
        self._thread.join(5)
        os.close(fd)
        return self.opened


@dataclass
class Canaries:
    http: Listener
    file: FileCanary

    @property
    def http_uri(self) -> str:
        return f"http://127.0.0.1:{self.http.port}/receipt.xml"

    @property
    def file_uri(self) -> str:
        return self.file.path.as_uri()


@pytest.fixture
def canaries(tmp_path: Path) -> Iterator[Canaries]:
    c = Canaries(Listener(), FileCanary(tmp_path))
    try:
        yield c
    finally:
        c.http.received()
        c.http.close()
        c.file.close()


# ------------------------------------------------------------------ documents and signatures


@dataclass(frozen=True)
class Shape:
    """One kind of signed inbound message: customs' CEB622 receipt or the port's Arrival.
    `leaf` is the signed text that the comment and tamper cases edit."""

    name: str
    authority: str  # whose trust store verifies it
    endpoint: str
    envelope_type: str
    ns: str
    prefix: str
    root: str
    entry: str
    leaf: tuple[str, str, str]  # (local name, genuine text, forged text)
    split: str  # the genuine text with a comment in it
    attributes: Callable[[], dict[str, str]]
    head: Callable[[], list[etree._Element]]  # elements before the entries
    make_entry: Callable[[str, bool], etree._Element]  # (target, evil) -> entry


def _receipt_entry(target: str, evil: bool) -> etree._Element:
    """An InventoryReturn for the declaration: customs rejects it (100), or, forged,
    releases it (800) with the canary as its returnInfo."""
    fields = {
        "guid": target,
        "copNo": "COP1",
        "preNo": "B20261123000000001",
        "invtNo": "46012026I000000001",
        "returnStatus": EVIL_CODE if evil else GENUINE_CODE,
        "returnTime": "20261123120000100",
        "returnInfo": CANARY if evil else "订购人身份信息校验不通过",
    }
    entry = inventory_return(fields).find(_q(CEB_NS, "InventoryReturn"))
    assert entry is not None
    return entry


def _port_entry(target: str, evil: bool) -> etree._Element:
    """A Consignment of the declaration's parcel; forged, it names the canary bill."""
    entry = etree.Element(_q(PORT_NS, "Consignment"))
    etree.SubElement(entry, _q(PORT_NS, "logisticsNo")).text = target
    if evil:
        etree.SubElement(entry, _q(PORT_NS, "billNo")).text = CANARY
    etree.SubElement(entry, _q(PORT_NS, "arrivedAt")).text = "2026-11-23T12:00:00+08:00"
    return entry


def _port_code() -> list[etree._Element]:
    code = etree.Element(_q(PORT_NS, "portCode"))
    code.text = "4601"
    return [code]


RECEIPT = Shape(
    name="receipt",
    authority="customs",
    endpoint="/api/v1/receipts",
    envelope_type="CEB622",
    ns=CEB_NS,
    prefix="ceb",
    root="CEB622Message",
    entry="InventoryReturn",
    leaf=("returnStatus", GENUINE_CODE, EVIL_CODE),
    split="1<!---->00",  # a reader stopping at the comment reads 1 (declaring), not 100
    attributes=lambda: {"guid": str(uuid.uuid4()).upper(), "version": "1.0"},
    head=list,
    make_entry=_receipt_entry,
)
PORT_EVENT = Shape(
    name="port_event",
    authority="port",
    endpoint="/api/v1/port/events",
    envelope_type="PortArrival",
    ns=PORT_NS,
    prefix="port",
    root="Arrival",
    entry="Consignment",
    leaf=("portCode", "4601", "5301"),
    split="46<!---->01",
    attributes=lambda: {"id": str(uuid.uuid4()).upper(), "version": "1.0"},
    head=_port_code,
    make_entry=_port_entry,
)
SHAPES = (RECEIPT, PORT_EVENT)


@dataclass(frozen=True)
class Kit:
    """What a case is built from: the message shape, the authority's key, the other
    identities, the declaration it targets (guid or logisticsNo), the canary URIs."""

    shape: Shape
    authority: SigningKey
    pki: Pki
    target: str
    http_uri: str
    file_uri: str


def _message(kit: Kit, *entries: etree._Element, ident: str | None = None) -> etree._Element:
    """A compact message declaring its namespace and ds: on the root, so an element moved
    anywhere in it keeps the same namespaces in scope (and its digest)."""
    shape = kit.shape
    root = etree.Element(
        _q(shape.ns, shape.root), shape.attributes(), nsmap={shape.prefix: shape.ns, "ds": DS}
    )
    if ident:
        root.set("Id", ident)
    root.extend(shape.head())
    for entry in entries:
        root.append(copy.deepcopy(entry))
    return etree.fromstring(etree.tostring(root))


def _genuine_entry(kit: Kit, ident: str | None = None) -> etree._Element:
    entry = kit.shape.make_entry(kit.target, False)
    if ident:
        entry.set("Id", ident)
    return entry


def _evil_entry(kit: Kit) -> etree._Element:
    return kit.shape.make_entry(kit.target, True)


def _first_entry(kit: Kit, root: etree._Element) -> etree._Element:
    found = root.find(_q(kit.shape.ns, kit.shape.entry))
    assert found is not None
    return found


def _leaf(kit: Kit, text: str) -> bytes:
    local = kit.shape.leaf[0]
    return f"<{kit.shape.prefix}:{local}>{text}</{kit.shape.prefix}:{local}>".encode()


@dataclass(frozen=True)
class Ref:
    uri: str
    transforms: tuple[str, ...] = (ENVELOPED,)


def _ds(
    parent: etree._Element, local: str, text: str | None = None, **attrs: str
) -> etree._Element:
    child = etree.SubElement(parent, _q(DS, local), attrs)
    child.text = text
    return child


def _by_id(root: etree._Element, ident: str) -> etree._Element:
    found = root.xpath("//*[@Id=$i]", i=ident)
    assert found, ident
    return found[0]  # type: ignore[no-any-return]


def _same_place(
    copy_root: etree._Element, root: etree._Element, node: etree._Element
) -> etree._Element:
    """The node of a deep copy at the place `node` has under `root`."""
    path = []
    while node is not root:
        parent = node.getparent()
        path.append(parent.index(node))
        node = parent
    for index in reversed(path):
        copy_root = copy_root[index]
    return copy_root


def _reference_bytes(root: etree._Element, sig: etree._Element, ref: Ref) -> bytes:
    """What a reference dereferences to at signing time, C14N 1.0 without comments."""
    if not (ref.uri == "" or ref.uri.startswith("#")):
        return b""  # an external URI: never dereferenced by the gateway, nothing to match
    doc = copy.deepcopy(root.getroottree())
    if ENVELOPED in ref.transforms:
        twin = _same_place(doc.getroot(), root, sig)
        twin.getparent().remove(twin)
    if ref.uri == "":
        return etree.tostring(doc, method="c14n")
    return etree.tostring(_by_id(doc.getroot(), ref.uri[1:]), method="c14n")


def _sign(
    root: etree._Element,
    key: SigningKey,
    refs: tuple[Ref, ...] = (Ref(""),),
    *,
    method: str = RSA_SHA256_URI,
    digest: str = SHA256,
    cert_b64: str | None = None,
    key_value: rsa.RSAPublicKey | None = None,
    retrieval_uri: str | None = None,
) -> etree._Element:
    """Append a ds:Signature with correct digests and a correct value (RSA with `key`, or
    HMAC keyed with the embedded certificate), so a refusal is never a broken signature."""
    sig = _ds(root, "Signature")
    signed_info = _ds(sig, "SignedInfo")
    _ds(signed_info, "CanonicalizationMethod", Algorithm=C14N)
    _ds(signed_info, "SignatureMethod", Algorithm=method)
    values = []
    for ref in refs:
        reference = _ds(signed_info, "Reference", URI=ref.uri)
        transforms = _ds(reference, "Transforms")
        for algorithm in ref.transforms:
            _ds(transforms, "Transform", Algorithm=algorithm)
        _ds(reference, "DigestMethod", Algorithm=digest)
        values.append((ref, _ds(reference, "DigestValue")))
    value = _ds(sig, "SignatureValue")
    key_info = _ds(sig, "KeyInfo")
    _ds(key_info, "KeyName", key.key_name)
    if key_value is not None:
        numbers = key_value.public_numbers()
        rsa_value = _ds(_ds(key_info, "KeyValue"), "RSAKeyValue")
        _ds(rsa_value, "Modulus", _b64int(numbers.n))
        _ds(rsa_value, "Exponent", _b64int(numbers.e))
    if retrieval_uri is not None:
        _ds(key_info, "RetrievalMethod", URI=retrieval_uri)
    _ds(_ds(key_info, "X509Data"), "X509Certificate", cert_b64 or key.cert_b64)
    algorithm = hashes.SHA1() if digest == SHA1 else hashes.SHA256()  # noqa: S303 (the case)
    for ref, element in values:
        hasher = hashes.Hash(algorithm)
        hasher.update(_reference_bytes(root, sig, ref))
        element.text = base64.b64encode(hasher.finalize()).decode()
    data = etree.tostring(signed_info, method="c14n")
    if method == HMAC_SHA256_URI:
        secret = base64.b64decode(cert_b64 or key.cert_b64)
        raw = hmac.new(secret, data, hashlib.sha256).digest()
    else:
        raw = key.sign(data, method)
    value.text = base64.b64encode(raw).decode()
    return sig


def _b64int(number: int) -> str:
    return base64.b64encode(number.to_bytes((number.bit_length() + 7) // 8, "big")).decode()


def _signature(root: etree._Element) -> etree._Element:
    found = root.find(f".//{_q(DS, 'Signature')}")
    assert found is not None
    return found


def _bytes(root: etree._Element) -> bytes:
    return etree.tostring(root)


def genuine(kit: Kit) -> bytes:
    """The message the authority really sent, signed URI="" (enveloped)."""
    root = _message(kit, _genuine_entry(kit))
    _sign(root, kit.authority)
    return _bytes(root)


# ------------------------------------------------------------------ the cases


def _id_signed_entry(kit: Kit) -> tuple[etree._Element, etree._Element, etree._Element]:
    """A message whose signature points at its entry by Id (as WS-Security and SAML do):
    (message, signed entry, signature)."""
    root = _message(kit, _genuine_entry(kit, "e1"))
    sig = _sign(root, kit.authority, (Ref("#e1", (C14N,)),))
    return root, _first_entry(kit, root), sig


def xsw1_original_copied_into_signature(kit: Kit) -> bytes:
    """XSW1: an evil message carries the signature, the signed original hides inside it."""
    original = _message(kit, _genuine_entry(kit), ident="msg")
    sig = _sign(original, kit.authority, (Ref("#msg"),))
    evil = _message(kit, _evil_entry(kit))
    original.remove(sig)
    sig.append(original)
    evil.append(sig)
    return _bytes(evil)


def xsw2_original_copied_before_signature(kit: Kit) -> bytes:
    """XSW2: the signed original (by Id) nested before the signature of an evil message."""
    original = _message(kit, _genuine_entry(kit), ident="msg")
    sig = _sign(original, kit.authority, (Ref("#msg"),))
    original.remove(sig)
    evil = _message(kit, _evil_entry(kit))
    evil.append(original)
    evil.append(sig)
    return _bytes(evil)


def xsw3_evil_entry_before_the_signed_one(kit: Kit) -> bytes:
    """XSW3: an evil entry inserted before the entry the Id reference signs."""
    root, entry, _ = _id_signed_entry(kit)
    entry.addprevious(_evil_entry(kit))
    return _bytes(root)


def xsw4_signed_entry_inside_the_evil_one(kit: Kit) -> bytes:
    """XSW4: the signed entry moved inside an evil entry that takes its place."""
    root, entry, _ = _id_signed_entry(kit)
    evil = _evil_entry(kit)
    root.replace(entry, evil)
    evil.append(entry)
    return _bytes(root)


def xsw5_signed_entry_after_the_signature(kit: Kit) -> bytes:
    """XSW5: an evil entry first, the signed one moved after the signature."""
    root, entry, _ = _id_signed_entry(kit)
    root.replace(entry, _evil_entry(kit))
    root.append(entry)
    return _bytes(root)


def xsw6_signed_entry_inside_the_signature(kit: Kit) -> bytes:
    """XSW6: the signed entry moved into ds:Signature, an evil entry in its place."""
    root, entry, sig = _id_signed_entry(kit)
    root.replace(entry, _evil_entry(kit))
    sig.append(entry)
    return _bytes(root)


def xsw7_signed_entry_in_an_extension_element(kit: Kit) -> bytes:
    """XSW7: the signed entry parked in an element a lax schema would ignore."""
    root, entry, sig = _id_signed_entry(kit)
    root.replace(entry, _evil_entry(kit))
    extensions = etree.Element(_q(kit.shape.ns, "Extensions"))
    extensions.append(entry)
    sig.addprevious(extensions)
    return _bytes(root)


def xsw8_signed_entry_under_ds_object(kit: Kit) -> bytes:
    """XSW8: the signed entry wrapped in a ds:Object of the signature."""
    root, entry, sig = _id_signed_entry(kit)
    root.replace(entry, _evil_entry(kit))
    _ds(sig, "Object").append(entry)
    return _bytes(root)


def signed_message_wrapped_in_an_evil_one(kit: Kit) -> bytes:
    """The whole genuine message (URI="", its signature inside) nested in an evil one."""
    original = etree.fromstring(genuine(kit))
    evil = _message(kit, _evil_entry(kit))
    extensions = etree.SubElement(evil, _q(kit.shape.ns, "Extensions"))
    extensions.append(original)
    return _bytes(evil)


def second_signature(kit: Kit) -> bytes:
    """An impostor's valid signature over the evil message, the authority's genuine one
    copied after it: a verifier that trusts one and checks the other is fooled."""
    evil = _message(kit, _evil_entry(kit))
    _sign(evil, kit.pki.impostor)
    evil.append(copy.deepcopy(_signature(etree.fromstring(genuine(kit)))))
    return _bytes(evil)


def sibling_reference_outside_signed_info(kit: Kit) -> bytes:
    """Evil content and a ds:Reference with its digest beside SignedInfo, where a
    verifier that looks for .//Reference finds it, though nothing signs it."""
    root = etree.fromstring(genuine(kit))
    sig = _signature(root)
    root.replace(_first_entry(kit, root), _evil_entry(kit))
    forged = copy.deepcopy(sig.find(f"{_q(DS, 'SignedInfo')}/{_q(DS, 'Reference')}"))
    assert forged is not None
    forged.find(_q(DS, "DigestValue")).text = base64.b64encode(  # type: ignore[union-attr]
        hashlib.sha256(_reference_bytes(root, sig, Ref(""))).digest()
    ).decode()
    sig.insert(1, forged)
    return _bytes(root)


def two_references(kit: Kit) -> bytes:
    """The authority signs the message and, by Id, its entry: two References, both valid."""
    root = _message(kit, _genuine_entry(kit, "e1"))
    _sign(root, kit.authority, (Ref(""), Ref("#e1", (C14N,))))
    return _bytes(root)


def duplicate_ids(kit: Kit) -> bytes:
    """An evil entry with the signed entry's Id, first: which one does #e1 mean?"""
    root, entry, _ = _id_signed_entry(kit)
    evil = _evil_entry(kit)
    evil.set("Id", "e1")
    entry.addprevious(evil)
    return _bytes(root)


def comment_splits_a_signed_value(kit: Kit) -> bytes:
    """E.g. returnStatus 1<!---->00: C14N drops the comment, so the digest holds, while a
    reader that stops at the comment reads 1 (declaring) instead of 100 (rejected)."""
    data = genuine(kit)
    signed = _leaf(kit, kit.shape.leaf[1])
    assert data.count(signed) == 1
    return data.replace(signed, _leaf(kit, kit.shape.split))


def external_http_reference(kit: Kit) -> bytes:
    """A Reference to the http canary: a verifier that fetches it digests what we serve."""
    root = _message(kit, _evil_entry(kit))
    _sign(root, kit.authority, (Ref(kit.http_uri, ()),))
    return _bytes(root)


def external_file_reference(kit: Kit) -> bytes:
    """A Reference to a local file (the FIFO canary)."""
    root = _message(kit, _evil_entry(kit))
    _sign(root, kit.authority, (Ref(kit.file_uri, ()),))
    return _bytes(root)


def retrieval_method_to_the_canary(kit: Kit) -> bytes:
    """KeyInfo that asks the verifier to fetch the key from the http canary."""
    root = _message(kit, _genuine_entry(kit))
    _sign(root, kit.authority, retrieval_uri=kit.http_uri)
    return _bytes(root)


def key_value_differs_from_certificate(kit: Kit) -> bytes:
    """Signed with the impostor's key, shown in KeyValue, beside the authority's certificate:
    a verifier that takes the key from KeyValue and trust from the certificate is fooled."""
    root = _message(kit, _evil_entry(kit))
    _sign(
        root,
        kit.pki.impostor,
        cert_b64=kit.authority.cert_b64,
        key_value=kit.pki.impostor.certificate.public_key(),  # type: ignore[arg-type]
    )
    return _bytes(root)


def certificate_from_another_ca(kit: Kit) -> bytes:
    """Issued by a CA with the trusted CA's name but another key."""
    root = _message(kit, _evil_entry(kit))
    _sign(root, kit.pki.rogue)
    return _bytes(root)


def self_signed_impostor(kit: Kit) -> bytes:
    """A self-signed certificate with the authority's name."""
    root = _message(kit, _evil_entry(kit))
    _sign(root, kit.pki.impostor)
    return _bytes(root)


def expired_certificate(kit: Kit) -> bytes:
    """Issued by the trusted CA, expired ten days ago."""
    root = _message(kit, _evil_entry(kit))
    _sign(root, kit.pki.expired)
    return _bytes(root)


def revoked_certificate(kit: Kit) -> bytes:
    """Issued by the trusted CA, in its validity, revoked."""
    root = _message(kit, _evil_entry(kit))
    _sign(root, kit.pki.revoked)
    return _bytes(root)


def sha1_not_allowed(kit: Kit) -> bytes:
    """The authority's own key, RSA-SHA1 / SHA-1: its policy (rsa-sha256) does not allow it."""
    root = _message(kit, _genuine_entry(kit))
    _sign(root, kit.authority, method=RSA_SHA1_URI, digest=SHA1)
    return _bytes(root)


def hmac_signature_method(kit: Kit) -> bytes:
    """HMAC-SHA256 keyed with the authority's public certificate: anyone can compute it."""
    root = _message(kit, _evil_entry(kit))
    _sign(root, kit.authority, method=HMAC_SHA256_URI)
    return _bytes(root)


def signature_not_the_last_child(kit: Kit) -> bytes:
    """The genuine signature moved first; URI="" with the enveloped transform still digests
    the same bytes, so only the position rule refuses it."""
    root = etree.fromstring(genuine(kit))
    root.insert(0, _signature(root))
    return _bytes(root)


def signature_inside_the_entry(kit: Kit) -> bytes:
    """The genuine signature moved into the entry: the same digest, another place."""
    root = etree.fromstring(genuine(kit))
    _first_entry(kit, root).append(_signature(root))
    return _bytes(root)


def tampered_signed_value(kit: Kit) -> bytes:
    """The plain forgery: e.g. returnStatus 100 edited to 800 under the genuine signature."""
    _, genuine_text, forged_text = kit.shape.leaf
    return genuine(kit).replace(_leaf(kit, genuine_text), _leaf(kit, forged_text))


@dataclass(frozen=True)
class Case:
    """`xmlsec1`: what xmlsec1 is expected to say ("valid" = the signature itself is sound,
    so only our structure or policy checks refuse it), or None where asking it is not
    meaningful (it would fetch the canary, or needs a shared secret)."""

    build: Callable[[Kit], bytes]
    code: str
    xmlsec1: str | None
    id_attrs: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return self.build.__name__


ENTRY_ID = ("entry",)  # xmlsec1 must be told which attribute is an ID, on which element
MESSAGE_ID = ("root",)
CASES = (
    Case(xsw1_original_copied_into_signature, "signature.malformed", "refused", MESSAGE_ID),
    Case(xsw2_original_copied_before_signature, "signature.wrapping", "valid", MESSAGE_ID),
    Case(xsw3_evil_entry_before_the_signed_one, "signature.wrapping", "valid", ENTRY_ID),
    Case(xsw4_signed_entry_inside_the_evil_one, "signature.wrapping", "valid", ENTRY_ID),
    Case(xsw5_signed_entry_after_the_signature, "signature.wrapping", "valid", ENTRY_ID),
    Case(xsw6_signed_entry_inside_the_signature, "signature.malformed", "refused", ENTRY_ID),
    Case(xsw7_signed_entry_in_an_extension_element, "signature.wrapping", "valid", ENTRY_ID),
    Case(xsw8_signed_entry_under_ds_object, "signature.wrapping", "valid", ENTRY_ID),
    Case(signed_message_wrapped_in_an_evil_one, "signature.wrapping", "refused"),
    Case(second_signature, "signature.wrapping", "refused"),
    Case(sibling_reference_outside_signed_info, "signature.malformed", "refused"),
    Case(two_references, "signature.wrapping", "valid", ENTRY_ID),
    Case(duplicate_ids, "signature.wrapping", "refused", ENTRY_ID),
    Case(comment_splits_a_signed_value, "signature.wrapping", "valid"),
    Case(external_http_reference, "signature.wrapping", None),
    Case(external_file_reference, "signature.wrapping", None),
    Case(retrieval_method_to_the_canary, "signature.wrapping", None),
    # xmlsec1 with its default key data takes the key from KeyValue and trusts it.
    Case(key_value_differs_from_certificate, "signature.invalid", "valid"),
    Case(certificate_from_another_ca, "signature.untrusted", "refused"),
    Case(self_signed_impostor, "signature.untrusted", "refused"),
    Case(expired_certificate, "signature.expired", "refused"),
    Case(revoked_certificate, "signature.revoked", "valid"),  # xmlsec1 here has no CRL option
    Case(sha1_not_allowed, "signature.algorithm", "valid"),
    Case(hmac_signature_method, "signature.algorithm", None),
    Case(signature_not_the_last_child, "signature.wrapping", "valid"),
    Case(signature_inside_the_entry, "signature.wrapping", "valid"),
    Case(tampered_signed_value, "signature.digest_mismatch", "refused"),
)


# ------------------------------------------------------------------ judges


def _trust(kit: Kit) -> TrustStore:
    """The authority's certificate and its CA, with the CA's revoked signer."""
    return TrustStore(
        [kit.authority.certificate, kit.pki.ca_cert],
        revoked_serials=[kit.pki.revoked.certificate.serial_number],
    )


def _ours(data: bytes, trust: TrustStore, engine: str = "lean") -> str:
    """Our verdict: "valid" or the reason code (``engine``: the cryptographic check)."""
    try:
        verify_enveloped(etree.fromstring(data), trust, RSA_SHA256, engine=engine)
    except SignatureError as exc:
        return exc.code
    return "valid"


def _xmlsec1(data: bytes, kit: Kit, case: Case, authority_pem: Path, tmp: Path) -> str:
    """xmlsec1's verdict on the same bytes, trusting what the gateway trusts."""
    assert XMLSEC1 is not None
    path = tmp / f"{kit.shape.name}-{case.name}.xml"
    path.write_bytes(data)
    elements = {"entry": kit.shape.entry, "root": kit.shape.root}
    ids = [a for n in case.id_attrs for a in ("--id-attr:Id", f"{kit.shape.ns}:{elements[n]}")]
    result = subprocess.run(
        [
            XMLSEC1, "--verify", "--trusted-pem", str(authority_pem),
            "--trusted-pem", str(kit.pki.ca_pem), *ids, str(path),
        ],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    return "valid" if result.returncode == 0 else "refused"


@dataclass
class Unit:
    """A module-wide authority (generated) and canaries, for the per-case tests."""

    authority: SigningKey
    authority_pem: Path
    pki: Pki
    canaries: Canaries
    tmp: Path

    def kit(self, shape: Shape) -> Kit:
        return Kit(
            shape, self.authority, self.pki, "TARGET-1", self.canaries.http_uri,
            self.canaries.file_uri,
        )  # fmt: skip


@pytest.fixture(scope="module")
def unit(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Unit]:
    tmp = tmp_path_factory.mktemp("t4-unit")
    key = _rsa()
    cert = build_self_signed(
        "Sandbox customs authority (TEST)", key, NOW - dt.timedelta(days=1),
        NOW + dt.timedelta(days=300),
    )  # fmt: skip
    canaries = Canaries(Listener(), FileCanary(tmp))
    yield Unit(
        signing_key_from(key, cert, "authority"), _pem(tmp, "authority", cert), pki, canaries, tmp
    )
    assert canaries.http.received() == []
    canaries.http.close()
    assert canaries.file.close() == 0


needs_xmlsec1 = pytest.mark.skipif(XMLSEC1 is None, reason="xmlsec1 is not installed")
ASKED = [c for c in CASES if c.xmlsec1 is not None]
# Cases whose harm is a signature the policy refuses, not content: no canary in them.
NO_EVIL_CONTENT = {
    two_references,
    comment_splits_a_signed_value,
    retrieval_method_to_the_canary,
    sha1_not_allowed,
    signature_not_the_last_child,
    signature_inside_the_entry,
    tampered_signed_value,
}
by_shape = pytest.mark.parametrize("shape", SHAPES, ids=[s.name for s in SHAPES])
# Both cryptographic checks: our own (the default) and signxml's (GATEWAY_VERIFY_ENGINE).
by_engine = pytest.mark.parametrize("engine", ENGINES)


@by_engine
@by_shape
def test_the_genuine_message_verifies(unit: Unit, shape: Shape, engine: str) -> None:
    """The control: without it every case could be refused for a broken builder."""
    assert _ours(genuine(unit.kit(shape)), _trust(unit.kit(shape)), engine) == "valid"


@needs_xmlsec1
@by_shape
def test_xmlsec1_verifies_the_genuine_message(unit: Unit, shape: Shape) -> None:
    """The control for xmlsec1: its "refused" means the case, not our invocation."""
    kit = unit.kit(shape)
    control = Case(genuine, "", "valid")
    assert _xmlsec1(genuine(kit), kit, control, unit.authority_pem, unit.tmp) == "valid"


@by_engine
@by_shape
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_verify_enveloped_refuses_the_case_with_its_code(
    unit: Unit, shape: Shape, case: Case, engine: str
) -> None:
    """(a) for one case, by either engine; every case that forges content carries the
    canary."""
    kit = unit.kit(shape)
    data = case.build(kit)
    assert _ours(data, _trust(kit), engine) == case.code
    assert (CANARY.encode() in data) != (case.build in NO_EVIL_CONTENT)


@needs_xmlsec1
@by_shape
@pytest.mark.parametrize("case", ASKED, ids=[c.name for c in ASKED])
def test_xmlsec1_judges_the_case_as_expected(unit: Unit, shape: Shape, case: Case) -> None:
    """(b) for one case: "valid" proves the signature in it is sound, so only our structure
    or policy checks stand between it and the database."""
    kit = unit.kit(shape)
    assert _xmlsec1(case.build(kit), kit, case, unit.authority_pem, unit.tmp) == case.xmlsec1


def test_the_canaries_see_a_fetch(canaries: Canaries) -> None:
    """Both canaries count what a fetching verifier would do, so their 0 below means 0."""
    assert etree.parse(canaries.file.path).getroot().tag == "x"
    with pytest.raises(OSError):  # the listener drops every connection
        urllib.request.urlopen(canaries.http_uri, timeout=2)
    assert canaries.file.close() == 1
    assert len(canaries.http.received()) == 1


# ------------------------------------------------------------------ the gateway


@dataclass
class Gateway:
    runtime: Runtime
    client: FlaskClient
    settings: Settings
    declaration_id: str
    kit: Kit
    authority_pem: Path


@pytest.fixture(params=SHAPES, ids=[s.name for s in SHAPES])
def gateway(
    request: pytest.FixtureRequest, settings: Settings, org_id: str, pki: Pki, canaries: Canaries
) -> Iterator[Gateway]:
    """The gateway's app; the sender's trust holds its configured certificate, the CA and
    the CA's revoked serial; one inventory list declared, which the messages target."""
    shape: Shape = request.param
    built = build_runtime(settings)
    configured = built.trust[shape.authority]
    trust = TrustStore(
        [*configured.certificates, pki.ca_cert],
        revoked_serials=[pki.revoked.certificate.serial_number],
    )
    rung: list[str] = []
    rt = replace(built, trust={**built.trust, shape.authority: trust}, ring=rung.extend)
    declared = declare(rt, org_id, fresh_ceb621(), "application/xml").declarations[0]
    with rt.engine.connect() as conn:
        row = repo.get_declaration(conn, declared.id)
    assert row is not None
    target = declared.doc_guid if shape is RECEIPT else str(row["logistics_no"])
    key_path, cert_path = sandbox_key_paths(settings, shape.authority)
    kit = Kit(
        shape, load_signing_key(key_path, cert_path), pki, target, canaries.http_uri,
        canaries.file_uri,
    )  # fmt: skip
    app = create_app(settings)
    app.extensions["gateway.runtime"] = lambda: rt
    with app.test_client() as client:
        yield Gateway(rt, client, settings, declared.id, kit, cert_path)
    built.engine.dispose()


def _post(gw: Gateway, data: bytes, name: str) -> Any:
    shape = gw.kit.shape
    sender = getattr(gw.settings, f"{shape.authority}_dxp_id")
    envelope = Envelope(
        f"R-{name}"[:60], sender, (gw.settings.demo_org_dxp_id,), shape.envelope_type, data
    )
    return gw.client.post(
        shape.endpoint, data=build_envelope(envelope), headers={"Content-Type": "application/xml"}
    )


def _snapshot(gw: Gateway) -> dict[str, Any]:
    """Everything an inbound message could change about the declaration, and what the
    gateway keeps of inbound messages."""
    with gw.runtime.engine.connect() as conn:
        decl = repo.get_declaration(conn, gw.declaration_id)
        assert decl is not None
        return {
            "declaration": dict(decl),
            "authorities": [dict(r) for r in repo.authority_rows(conn, gw.declaration_id)],
            "events": [dict(e) for e in repo.events_of(conn, gw.declaration_id)],
            "receipts": conn.execute(select(t.receipts)).all(),
            "port_events": conn.execute(select(t.port_events)).all(),
            "inbound": conn.execute(select(t.inbound_messages)).all(),
        }


def _canary_in_database(gw: Gateway) -> list[str]:
    """Tables holding the canary anywhere (values as text, bytes decoded)."""
    found = []
    with gw.runtime.engine.connect() as conn:
        for table in t.metadata.sorted_tables:
            for row in conn.execute(select(table)):
                for value in row:
                    text = (
                        value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
                    )
                    if CANARY in text:
                        found.append(table.name)
    return found


@dataclass
class Tally:
    refused: int = 0
    xmlsec1_asked: int = 0
    xmlsec1_refused: int = 0
    xmlsec1_valid: int = 0
    failures: list[tuple[str, str, Any]] = field(default_factory=list)


def test_every_case_is_refused_at_the_gateway_and_nothing_reaches_the_database(
    gateway: Gateway, canaries: Canaries, tmp_path: Path, proof: Any
) -> None:
    """(a)-(d) for every case against the gateway's endpoint for the message, then the
    genuine message, which must apply (so the checks can see one that gets through)."""
    gw, kit = gateway, gateway.kit
    before = _snapshot(gw)
    assert before["declaration"]["status"] == "accepted"
    assert before["receipts"] == before["port_events"] == []
    tally = Tally()
    for case in CASES:
        data = case.build(kit)
        ours = _ours(data, gw.runtime.trust[kit.shape.authority])
        if ours != case.code:
            tally.failures.append((case.name, "verify_enveloped", ours))
        if case.xmlsec1 is not None and XMLSEC1 is not None:
            tally.xmlsec1_asked += 1
            verdict = _xmlsec1(data, kit, case, gw.authority_pem, tmp_path)
            if verdict != case.xmlsec1:
                tally.failures.append((case.name, "xmlsec1", verdict))
            tally.xmlsec1_refused += verdict == "refused"
            tally.xmlsec1_valid += verdict == "valid"
        resp = _post(gw, data, case.name)
        problem = resp.get_json(silent=True) or {}
        codes = [e.get("code") for e in problem.get("errors", [])]
        if (
            400 <= resp.status_code < 500
            and resp.mimetype == "application/problem+json"
            and codes == [case.code]
        ):
            tally.refused += 1
        else:
            tally.failures.append((case.name, "endpoint", (resp.status_code, codes)))
        now = _snapshot(gw)
        if now != before:  # compared case by case: one that gets through is named alone
            tally.failures.append((case.name, "database", "changed"))
            before = now
    fetches = len(canaries.http.received()) + canaries.file.close()
    leaked = _canary_in_database(gw)
    control = _post(gw, genuine(kit), "genuine")
    after = _snapshot(gw)
    proof.add(
        "T4",
        {
            "message": kit.shape.name,
            "endpoint": kit.shape.endpoint,
            "cases": len(CASES),
            "refused": tally.refused,
            "fetches": fetches,
            "xmlsec1_asked": tally.xmlsec1_asked,
            "xmlsec1_refused": tally.xmlsec1_refused,
            "xmlsec1_valid_we_refuse": tally.xmlsec1_valid,
            "tampered_in_database": len(leaked),
            "failures": len(tally.failures),
        },
    )
    assert len(CASES) >= MIN_CASES
    assert tally.failures == []
    assert tally.refused == len(CASES)
    assert fetches == 0
    assert leaked == []
    assert control.status_code == 200, control.get_data(as_text=True)
    assert control.get_json()["applied"] == 1
    if kit.shape is RECEIPT:
        assert after["declaration"]["status"] == "rejected" and len(after["receipts"]) == 1
    else:
        assert len(after["port_events"]) == 1
