"""Property-based tests (hypothesis) over every message type's valid corpus documents.

- A valid document with any schema-conforming value in a free-text field stays valid.
- A document mutated against its schema (a required field removed, a value too long, a
  number that is not a number) is never accepted silently.
- No byte-level mutation of any document makes validation fail outside our error tree.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import xmlschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from gateway.services.validate import check_message, validate_file
from gateway.xml.parsing import DEFAULT_LIMITS
from schemas.registry import get_spec

CORPUS = Path(__file__).resolve().parents[1] / "data" / "messages"
VALID = sorted(CORPUS.glob("*/valid*.xml"))
# Fields that business rules read: changing them freely may break a rule on purpose.
RULE_FIELDS = frozenset(
    {
        "guid",
        "appType",
        "appStatus",
        "appTime",
        "declTime",
        "ieDate",
        "payTime",
        "buyerIdType",
        "buyerIdNumber",
        "payerIdType",
        "payerIdNumber",
        "gcode",
        "currency",
        "qty",
        "price",
        "totalPrice",
        "goodsValue",
        "freight",
        "discount",
        "taxTotal",
        "acturalPaid",
        "tradeMode",
        "emsNo",
        "areaCode",
        "returnStatus",
    }
)
TEXT = st.text(alphabet=st.sampled_from("ABCXYZabcxyz0123456789-_ 货物报关上海"), min_size=1)


@dataclass(frozen=True)
class Facets:
    required: bool
    kind: str  # "string" | "decimal" | "other"
    min_length: int
    max_length: int | None
    fixed: bool


@functools.cache
def _facets(message_type: str) -> dict[str, Facets]:
    """Leaf paths (no indices) of a message type -> their schema facets."""
    schema = xmlschema.XMLSchema(str(get_spec(message_type).xsd))
    out: dict[str, Facets] = {}

    def walk(el: xmlschema.validators.XsdElement, path: str, depth: int) -> None:
        xsd_type = el.type
        if xsd_type.is_simple() or xsd_type.has_simple_content():
            simple = xsd_type if xsd_type.is_simple() else xsd_type.content
            prim = getattr(getattr(simple, "primitive_type", None), "local_name", "")
            kind = prim if prim in ("string", "decimal") else "other"
            if getattr(simple, "patterns", None) or getattr(simple, "enumeration", None):
                kind = "other"
            out[path] = Facets(
                el.min_occurs >= 1,
                kind,
                simple.min_length or 0,
                simple.max_length,
                el.fixed is not None,
            )
            return
        for child in el.iterchildren():
            if child.local_name and depth < 6:
                walk(child, f"{path}/{child.local_name}", depth + 1)

    root = schema.elements[get_spec(message_type).root]
    walk(root, f"/{root.local_name}", 0)
    return out


def _leaves(doc: etree._Element) -> list[tuple[etree._Element, str]]:
    tree = doc.getroottree()
    out = []
    for el in doc.iter():
        if isinstance(el.tag, str) and len(el) == 0 and "Signature" not in el.tag:
            path = "/".join(p.split(":")[-1].split("[")[0] for p in tree.getpath(el).split("/"))
            out.append((el, path))
    return out


def _load(path: Path) -> tuple[str, etree._Element]:
    return path.parent.name, etree.fromstring(path.read_bytes())


def _violations(doc: etree._Element) -> list[str]:
    return [v.code for v in check_message(etree.tostring(doc), DEFAULT_LIMITS).violations]


FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(path=st.sampled_from(VALID), data=st.data())
def test_a_valid_document_with_any_conforming_free_text_stays_valid(path: Path, data) -> None:
    mtype, doc = _load(path)
    facets = _facets(mtype)
    choices = [
        (el, facets[p])
        for el, p in _leaves(doc)
        if p in facets
        and facets[p].kind == "string"
        and not facets[p].fixed
        and etree.QName(el).localname not in RULE_FIELDS
        and facets[p].max_length
    ]
    if not choices:
        return
    el, f = data.draw(st.sampled_from(choices))
    low, high = max(1, f.min_length), f.max_length or 30
    el.text = data.draw(
        st.text(
            alphabet=st.sampled_from("ABCxyz0123456789-_货物"),
            min_size=low,
            max_size=min(high, 40) if high >= low else low,
        )
    )
    assert _violations(doc) == [], (path.name, etree.QName(el).localname, el.text)


@FAST
@given(path=st.sampled_from(VALID), data=st.data())
def test_a_document_mutated_against_its_schema_is_never_accepted(path: Path, data) -> None:
    mtype, doc = _load(path)
    facets = _facets(mtype)
    leaves = [(el, facets[p]) for el, p in _leaves(doc) if p in facets]
    mutations = (
        [("remove", el) for el, f in leaves if f.required and _only_one(el)]
        + [("too_long", el) for el, f in leaves if f.kind == "string" and f.max_length]
        + [("not_a_number", el) for el, f in leaves if f.kind == "decimal"]
    )
    kind, el = data.draw(st.sampled_from(mutations))
    if kind == "remove":
        el.getparent().remove(el)
    elif kind == "too_long":
        limit = facets[_path_of(el)].max_length or 0
        el.text = "A" * (limit + data.draw(st.integers(1, 20)))
    else:
        el.text = data.draw(st.sampled_from(["abc", "1.2.3", "NaN", "1e5", "--1", "0x10"]))
    assert _violations(doc), (path.name, kind, etree.QName(el).localname)


def _only_one(el: etree._Element) -> bool:
    parent = el.getparent()
    return parent is not None and len(parent.findall(el.tag)) == 1


def _path_of(el: etree._Element) -> str:
    raw = el.getroottree().getpath(el)
    return "/".join(p.split(":")[-1].split("[")[0] for p in raw.split("/"))


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(VALID), data=st.data())
def test_no_byte_mutation_escapes_the_error_tree(path: Path, data) -> None:
    body = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 8))):
        op = data.draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        pos = data.draw(st.integers(0, max(0, len(body) - 1)))
        if op == "flip" and body:
            body[pos] = data.draw(st.integers(0, 255))
        elif op == "insert":
            body[pos:pos] = data.draw(st.binary(min_size=1, max_size=16))
        elif op == "delete" and body:
            del body[pos : pos + data.draw(st.integers(1, 16))]
        elif op == "truncate":
            del body[pos:]
    report = validate_file(path.name, bytes(body), DEFAULT_LIMITS)  # must not raise
    assert report.valid or report.errors
