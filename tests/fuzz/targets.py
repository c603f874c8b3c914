"""The fuzz targets of T5 (shared/RELIABILITY.md): every way untrusted bytes enter the
gateway, each with the errors it may raise. Anything else a target raises is a crash: a
bug that a real sender would see as a 500.

Each target gets the fuzzer's bytes and exercises one entry point end to end, without a
database or network: the hardened parse and XSD validation of a declaration, the JSON form,
signature verification, the batch reader (CSV, XLSX and ZIP uploads), and the receipt
path's envelope, parse, detection and schema check.
"""

from __future__ import annotations

import functools
import io
import json
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from adapters.dxp import Envelope, build_envelope, read_envelope
from gateway.domain.errors import GatewayError
from gateway.examples import fresh_ceb621
from gateway.services.batch_reader import BatchLimits, read_upload
from gateway.services.template_files import template_csv
from gateway.services.templates import get_template
from gateway.services.validate import check_body
from gateway.xml.json_codec import xml_to_json
from gateway.xml.parsing import ParseLimits, parse_xml
from gateway.xml.validation import detect, schema_violations
from signing.errors import SignatureError
from signing.keys import SigningKey, TrustStore, generate_test_identity, load_signing_key
from signing.xmldsig import sign_enveloped, verify_enveloped

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
LIMITS = ParseLimits(max_bytes=2_000_000, max_depth=64)
BATCH = BatchLimits(max_items=50, max_uncompressed=2_000_000, max_item_bytes=500_000)
# What each target may raise: the gateway's error tree (answered as problem details).
EXPECTED: tuple[type[BaseException], ...] = (GatewayError, SignatureError)


@dataclass(frozen=True)
class Target:
    name: str
    run: Callable[[bytes], object]
    seeds: Callable[[], list[bytes]]


def _declaration(data: bytes) -> object:
    return check_body(data, "xml", LIMITS)


def _json(data: bytes) -> object:
    return check_body(data, "json", LIMITS)


def _json_seeds() -> list[bytes]:
    root = etree.fromstring(fresh_ceb621(2))
    return [json.dumps(xml_to_json(root, detect(root)), ensure_ascii=False).encode()]


WORKDIR = Path("/tmp")  # where the throwaway identity is kept (the runner sets it)


@functools.cache
def _identity() -> tuple[SigningKey, TrustStore]:
    """A throwaway identity, made once per process, to sign the seeds and trust them."""
    key_path, cert_path = WORKDIR / "fuzz.key", WORKDIR / "fuzz.crt"
    if not key_path.exists():
        generate_test_identity("fuzz sender", key_path, cert_path)
    return load_signing_key(key_path, cert_path), TrustStore.from_pem_files([cert_path])


def _verify(data: bytes) -> object:
    return verify_enveloped(parse_xml(data, LIMITS), _identity()[1])


def _signed_seeds() -> list[bytes]:
    root = etree.fromstring(fresh_ceb621())
    sign_enveloped(root, _identity()[0])
    return [etree.tostring(root)]


def _rows(data: bytes) -> object:
    kind = data[:1]
    body = data[1:]
    if kind == b"x":
        return read_upload(body, XLSX, "u.xlsx", "inventory", BATCH)
    if kind == b"z":
        return read_upload(body, "application/zip", "u.zip", None, BATCH)
    return read_upload(body, "text/csv", "u.csv", "inventory", BATCH)


def _rows_seeds() -> list[bytes]:
    csv = template_csv(get_template("inventory"))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.xml", fresh_ceb621())
        zf.writestr("b.xml", fresh_ceb621(2))
    return [b"c" + csv, b"z" + buf.getvalue()]


def _receipt(data: bytes) -> object:
    envelope = read_envelope(parse_xml(data, LIMITS))
    root = parse_xml(envelope.data, LIMITS)
    return schema_violations(root, detect(root))


def _receipt_seeds() -> list[bytes]:
    from sandbox.receipts import inventory_return

    entry = inventory_return(
        {
            "guid": "4CDE1CFD-EDED-46B1-946C-B8022E42FC94",
            "copNo": "COP1",
            "preNo": "B20261123000000001",
            "invtNo": "46012026I000000001",
            "returnStatus": "120",
            "returnTime": "20261123120000120",
            "returnInfo": "ok",
        }
    )
    from sandbox.packing import pack

    data = etree.tostring(pack([entry]))
    envelope = Envelope("R-1", "DXPCUS0000000001", ("DXPENT0000000001",), "CEB622", data)
    return [build_envelope(envelope)]


TARGETS = {
    t.name: t
    for t in (
        Target("declaration", _declaration, lambda: [fresh_ceb621(), fresh_ceb621(3)]),
        Target("json", _json, _json_seeds),
        Target("verify", _verify, _signed_seeds),
        Target("rows", _rows, _rows_seeds),
        Target("receipt", _receipt, _receipt_seeds),
    )
}
