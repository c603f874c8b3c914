"""Our EXPORT schemas (CEB303 ... CEB792) against the official GACC 2022-05 ``export.xsd``.

A differential test, as for import (tests/unit/test_schemas.py, whose mutation helpers are
reused): the official samples, deterministic mutations of them, our own corpus and a sweep
of boundary values over every field of it must get the same valid/invalid answer from our
schema and the official one. Three official samples (CEB303, CEB507, CEB603) repeat
BaseTransfer and are invalid against the official schema: ours refuses them too, and says
precisely where. Tests that need ``../shared`` skip cleanly when it is absent.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path

import pytest
from lxml import etree

from gateway.xml.parsing import parse_xml
from gateway.xml.validation import schema_violations
from schemas import CEB_NS, get_spec, schema_for
from tests.unit.test_schemas import (
    EXTEND,
    NS,
    SAMPLES,
    SHARED,
    SUBSCRIBE,
    Mutation,
    _load,
    _need,
    both,
    delete,
    duplicate,
    insert_after,
    move_before,
    repeat_until,
    set_attr,
    set_tail_text,
    set_text,
    swap_with_next,
    unqualify,
)

OFFICIAL_EXPORT_XSD = SHARED / "ceb-official" / "xsd202205" / "export.xsd"
CORPUS = Path(__file__).resolve().parents[1] / "data" / "messages"

DECLARATIONS = ["CEB303", "CEB403", "CEB505", "CEB507", "CEB509", "CEB603", "CEB605", "CEB701"]
RECEIPTS = [
    "CEB304",
    "CEB404",
    "CEB506",
    "CEB508",
    "CEB510",
    "CEB604",
    "CEB606",
    "CEB702",
    "CEB792",
]
EXPORT_TYPES = DECLARATIONS + RECEIPTS
# Official samples that repeat BaseTransfer (invalid), and those that are valid.
BROKEN_SAMPLES = ["CEB303", "CEB507", "CEB603"]
VALID_SAMPLES = ["CEB304", "CEB508", "CEB604"]


@functools.cache
def _official() -> etree.XMLSchema:
    """The official export.xsd; it imports xmldsig-core-schema.xsd from beside it."""
    parser = etree.XMLParser(no_network=True, load_dtd=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(_need(OFFICIAL_EXPORT_XSD)), parser))


def _sample(type_: str) -> etree._Element:
    return _load(SAMPLES / f"{type_}Message.xml")


def _repaired(type_: str) -> etree._Element:
    """A broken official sample with its second BaseTransfer removed (then valid)."""
    root = _sample(type_)
    if type_ in BROKEN_SAMPLES:
        delete("c:BaseTransfer[2]")(root)
    return root


def _corpus(type_: str, name: str = "valid.xml") -> etree._Element:
    return parse_xml((CORPUS / type_ / name).read_bytes())


def _agree(root: etree._Element, type_: str) -> bool:
    """Validate with both schemas; fail unless they agree; return the shared answer."""
    ours = schema_for(get_spec(type_)).validate(root)
    official = _official().validate(root)
    assert ours == official, f"ours={ours} official={official}: {_official().error_log}"
    return ours


def clear_text(path: str) -> Mutation:
    """Make the element truly empty (no text node), as ``<x></x>`` parses: then a declared
    default or fixed value applies. ``set_text(path, "")`` keeps an empty text node, which
    libxml2 validates as the value ""."""

    def mutate(root: etree._Element) -> None:
        root.xpath(path, namespaces=NS)[0].text = None

    return mutate


def _signature() -> etree._Element:
    """A structurally valid ds:Signature, taken from an official sample."""
    return copy.deepcopy(_sample("CEB303").find("ds:Signature", NS))


# ------------------------------------------------------------------ official samples


@pytest.mark.parametrize("type_", VALID_SAMPLES)
def test_valid_official_samples_are_valid_in_both(type_: str) -> None:
    assert _agree(_sample(type_), type_)


@pytest.mark.parametrize("type_", BROKEN_SAMPLES)
def test_broken_official_samples_are_refused_naming_the_second_base_transfer(
    type_: str,
) -> None:
    root = _sample(type_)
    assert not _agree(root, type_)
    second = root.findall("c:BaseTransfer", NS)[1]
    violations = schema_violations(root, get_spec(type_))
    assert [(v.path, v.code, v.line) for v in violations] == [
        (f"/{type_}Message/BaseTransfer[2]", "schema.max_occurs", second.sourceline)
    ]
    assert "BaseTransfer" in violations[0].message
    assert "at most 1" in violations[0].message


@pytest.mark.parametrize("type_", BROKEN_SAMPLES)
def test_broken_samples_are_valid_once_repaired(type_: str) -> None:
    assert _agree(_repaired(type_), type_)


# ------------------------------------------------------------- sample mutations

SIGNATURE_LAST = "ds:Signature"
CT = "c:BaseTransfer"
OH = "c:Order[1]/c:OrderHead"
OL = "c:Order[1]/c:OrderList[1]"
CEB303_MUTATIONS: list[tuple[str, Mutation, bool]] = [
    ("repaired", lambda r: None, True),
    ("delete-orderType", delete(f"{OH}/c:orderType"), False),
    ("delete-optional-note", delete(f"{OH}/c:note"), True),
    ("delete-optional-itemDescribe-barCode", delete(f"{OL}/c:itemDescribe | {OL}/c:barCode"), True),
    ("empty-appStatus-takes-default", clear_text(f"{OH}/c:appStatus"), True),
    ("empty-freight-takes-default", clear_text(f"{OH}/c:freight"), True),
    ("empty-goodsValue", clear_text(f"{OH}/c:goodsValue"), False),
    ("empty-text-node-appStatus", set_text(f"{OH}/c:appStatus", ""), False),
    ("appStatus-2-chars", set_text(f"{OH}/c:appStatus", "12"), False),
    ("empty-orderNo", set_text(f"{OH}/c:orderNo", ""), True),
    ("orderNo-61", set_text(f"{OH}/c:orderNo", "o" * 61), False),
    ("currency-USD", set_text(f"{OH}/c:currency", "USD"), True),
    ("currency-4-chars", set_text(f"{OH}/c:currency", "1420"), False),
    ("goodsValue-6-fraction-digits", set_text(f"{OH}/c:goodsValue", "1.123456"), False),
    ("goodsValue-20-digits", set_text(f"{OH}/c:goodsValue", "123456789012345.12345"), False),
    ("gnum-99999", set_text(f"{OL}/c:gnum", "99999"), True),
    ("gnum-100000", set_text(f"{OL}/c:gnum", "100000"), False),
    ("itemNo-30", set_text(f"{OL}/c:itemNo", "i" * 30), True),
    ("itemNo-31", set_text(f"{OL}/c:itemNo", "i" * 31), False),
    ("100-lines", repeat_until(OL, 100), True),
    ("101-lines", repeat_until(OL, 101), False),
    ("100-documents", repeat_until("c:Order[1]", 100), True),
    ("101-documents", repeat_until("c:Order[1]", 101), False),
    ("swap-orderNo-ebpCode", swap_with_next(f"{OH}/c:orderNo"), False),
    ("unsigned", delete(SIGNATURE_LAST), True),
    ("five-BaseSubscribe", both(*[insert_after(CT, SUBSCRIBE)] * 5), True),
    ("six-BaseSubscribe", both(*[insert_after(CT, SUBSCRIBE)] * 6), False),
    ("ExtendMessage-after-Signature", insert_after(SIGNATURE_LAST, EXTEND), True),
    ("ExtendMessage-before-Signature", insert_after(CT, EXTEND), False),
    ("empty-copCode", set_text(f"{CT}/c:copCode", ""), True),
    ("copCode-19", set_text(f"{CT}/c:copCode", "c" * 19), False),
    ("delete-BaseTransfer", delete(CT), False),
    ("BaseTransfer-first", move_before(CT, "c:Order[1]"), False),
    ("version-11-chars", set_attr("version", "1" * 11), False),
    ("itemNo-without-namespace", unqualify(f"{OL}/c:itemNo"), False),
    ("text-in-Order", set_tail_text(OH, "stray"), False),
]

AH = "c:Arrival[1]/c:ArrivalHead"
AL = "c:Arrival[1]/c:ArrivalList[1]"
PRE_NO = '<c:preNo xmlns:c="NS">{}</c:preNo>'
CEB507_MUTATIONS: list[tuple[str, Mutation, bool]] = [
    ("repaired", lambda r: None, True),
    ("no-lists", delete("c:Arrival[1]/c:ArrivalList"), True),
    ("150-lists", repeat_until(AL, 150), True),
    ("delete-optional-loctNo-billNo", delete(f"{AH}/c:loctNo | {AH}/c:billNo"), True),
    ("trafMode-padded-is-collapsed", set_text(f"{AH}/c:trafMode", "  5 "), True),
    ("trafMode-2-chars", set_text(f"{AH}/c:trafMode", "55"), False),
    ("trafMode-empty", set_text(f"{AH}/c:trafMode", ""), False),
    ("domesticTrafNo-100-plus-spaces", set_text(f"{AH}/c:domesticTrafNo", "d" * 100 + "  "), True),
    ("domesticTrafNo-101", set_text(f"{AH}/c:domesticTrafNo", "d" * 101), False),
    ("preNo-18", insert_after(f"{AH}/c:copNo", PRE_NO.format("B20180507000000001")), True),
    ("preNo-17", insert_after(f"{AH}/c:copNo", PRE_NO.format("B2018050700000001")), False),
    ("msgCount-decimal", set_text(f"{AH}/c:msgCount", "1.0"), False),
    ("msgSeqNo-negative", set_text(f"{AH}/c:msgSeqNo", "-1"), True),
    ("msgSeqNo-10-digits", set_text(f"{AH}/c:msgSeqNo", "1234567890"), False),
    ("empty-appStatus-takes-default", clear_text(f"{AH}/c:appStatus"), True),
    ("ieFlag-2-chars", set_text(f"{AH}/c:ieFlag", "EE"), False),
    ("gnum-100000", set_text(f"{AL}/c:gnum", "100000"), False),
    ("delete-list-logisticsNo", delete(f"{AL}/c:logisticsNo"), False),
    ("totalPackageNo-38", set_text(f"{AL}/c:totalPackageNo", "t" * 38), False),
    ("swap-ieFlag-trafMode", swap_with_next(f"{AH}/c:ieFlag"), False),
    ("two-heads", duplicate(AH), False),
    ("unsigned", delete(SIGNATURE_LAST), True),
]

IH = "c:Inventory[1]/c:InventoryHead"
IL = "c:Inventory[1]/c:InventoryList[1]"
CEB603_MUTATIONS: list[tuple[str, Mutation, bool]] = [
    ("repaired", lambda r: None, True),
    ("fFlag-1", set_text(f"{IH}/c:fFlag", "1"), False),
    ("fFlag-empty-takes-fixed", clear_text(f"{IH}/c:fFlag"), True),
    ("fFlag-empty-text-node", set_text(f"{IH}/c:fFlag", ""), False),
    ("iFlag-padded", set_text(f"{IH}/c:iFlag", " 3"), False),
    ("POD-2-chars", set_text(f"{IH}/c:POD", "02"), False),
    ("POD-4-chars", set_text(f"{IH}/c:POD", "0020"), True),
    ("POD-5-chars", set_text(f"{IH}/c:POD", "00200"), False),
    ("POD-padded-is-collapsed", set_text(f"{IH}/c:POD", " 002 "), True),
    ("wrapType-padded-is-collapsed", set_text(f"{IH}/c:wrapType", " 1 "), True),
    ("delete-statisticsFlag", delete(f"{IH}/c:statisticsFlag"), False),
    ("delete-ieDate", delete(f"{IH}/c:ieDate"), False),
    ("empty-ebpName", set_text(f"{IH}/c:ebpName", ""), True),
    ("preNo-18", insert_after(f"{IH}/c:copNo", PRE_NO.format("B20180507000000001")), True),
    ("preNo-17", insert_after(f"{IH}/c:copNo", PRE_NO.format("B2018050700000001")), False),
    (
        "empty-optional-iacCode-emsNo",
        both(set_text(f"{IH}/c:iacCode", ""), set_text(f"{IH}/c:emsNo", "")),
        True,
    ),
    (
        "delete-optional-head-fields",
        delete(
            f"{IH}/c:iacCode | {IH}/c:iacName | {IH}/c:emsNo | {IH}/c:trafName | {IH}/c:voyageNo"
            f" | {IH}/c:billNo | {IH}/c:totalPackageNo | {IH}/c:loctNo | {IH}/c:licenseNo"
            f" | {IH}/c:note"
        ),
        True,
    ),
    ("unit2-empty", set_text(f"{IL}/c:unit2", ""), True),
    ("unit2-4-chars", set_text(f"{IL}/c:unit2", "0070"), False),
    ("delete-qty2-unit2", delete(f"{IL}/c:qty2 | {IL}/c:unit2"), True),
    ("delete-barCode", delete(f"{IL}/c:barCode"), False),
    ("gmodel-250-plus-spaces", set_text(f"{IL}/c:gmodel", "m" * 250 + "   "), True),
    ("gmodel-251", set_text(f"{IL}/c:gmodel", "m" * 251), False),
    ("gcode-9", set_text(f"{IL}/c:gcode", "854140100"), False),
    ("swap-qty-qty1", swap_with_next(f"{IL}/c:qty"), False),
    ("netWeight-6-fraction-digits", set_text(f"{IH}/c:netWeight", "1.123456"), False),
    ("packNo-10-digits", set_text(f"{IH}/c:packNo", "1234567890"), False),
    ("currency-USD", set_text(f"{IL}/c:currency", "USD"), True),
    ("100-lines", repeat_until(IL, 100), True),
    ("101-lines", repeat_until(IL, 101), False),
    ("unsigned", delete(SIGNATURE_LAST), True),
]

R4 = "c:OrderReturn[1]"
CEB304_MUTATIONS: list[tuple[str, Mutation, bool]] = [
    ("unchanged", lambda r: None, True),
    ("delete-ebpCode", delete(f"{R4}/c:ebpCode"), False),
    ("empty-ebpCode", set_text(f"{R4}/c:ebpCode", ""), True),
    ("empty-returnStatus", set_text(f"{R4}/c:returnStatus", ""), False),
    ("empty-returnInfo", set_text(f"{R4}/c:returnInfo", ""), True),
    ("returnTime-16", set_text(f"{R4}/c:returnTime", "2018050715300100"), False),
    ("orderNo-61", set_text(f"{R4}/c:orderNo", "o" * 61), False),
    ("100-returns", repeat_until(R4, 100), True),
    ("101-returns", repeat_until(R4, 101), False),
    ("BaseTransfer-in-receipt", insert_after(R4, '<c:BaseTransfer xmlns:c="NS"/>'), False),
    ("swap-guid-ebpCode", swap_with_next(f"{R4}/c:guid"), False),
]

R8 = "c:ArrivalReturn[1]"
CEB508_MUTATIONS: list[tuple[str, Mutation, bool]] = [
    ("unchanged", lambda r: None, True),
    ("preNo-17", set_text(f"{R8}/c:preNo", "P2018050700000000"), False),
    ("msgSeqNo-word", set_text(f"{R8}/c:msgSeqNo", "one"), False),
    ("empty-billNo", set_text(f"{R8}/c:billNo", ""), True),
    ("delete-billNo", delete(f"{R8}/c:billNo"), False),
    ("copNo-31", set_text(f"{R8}/c:copNo", "c" * 31), False),
    ("operatorCode-18", set_text(f"{R8}/c:operatorCode", "1" * 18), True),
    ("operatorCode-19", set_text(f"{R8}/c:operatorCode", "1" * 19), False),
    ("returnInfo-1001", set_text(f"{R8}/c:returnInfo", "x" * 1001), False),
    ("extra-element", insert_after(f"{R8}/c:copNo", '<c:foo xmlns:c="NS"/>'), False),
]

R6 = "c:InventoryReturn[1]"
CEB604_MUTATIONS: list[tuple[str, Mutation, bool]] = [
    ("unchanged", lambda r: None, True),
    ("empty-statisticsFlag", set_text(f"{R6}/c:statisticsFlag", ""), False),
    ("invtNo-20", set_text(f"{R6}/c:invtNo", "i" * 20), True),
    ("invtNo-21", set_text(f"{R6}/c:invtNo", "i" * 21), False),
    ("delete-orderNo", delete(f"{R6}/c:orderNo"), False),
    ("swap-ebcCode-ebpCode", swap_with_next(f"{R6}/c:ebcCode"), False),
    ("returnInfo-1000", set_text(f"{R6}/c:returnInfo", "退" * 1000), True),
    ("returnInfo-1001", set_text(f"{R6}/c:returnInfo", "退" * 1001), False),
    ("returnStatus-11", set_text(f"{R6}/c:returnStatus", "1" * 11), False),
    ("guid-attribute-35", set_attr("guid", "g" * 35), False),
    ("no-returns", delete("c:InventoryReturn"), False),
]

SAMPLE_MUTATIONS = {
    "CEB303": CEB303_MUTATIONS,
    "CEB507": CEB507_MUTATIONS,
    "CEB603": CEB603_MUTATIONS,
    "CEB304": CEB304_MUTATIONS,
    "CEB508": CEB508_MUTATIONS,
    "CEB604": CEB604_MUTATIONS,
}


@pytest.mark.parametrize(
    ("type_", "mutate", "expected"),
    [
        pytest.param(t, m, e, id=f"{t}-{i}")
        for t, cases in SAMPLE_MUTATIONS.items()
        for i, m, e in cases
    ],
)
def test_sample_mutations_agree_with_official(type_: str, mutate: Mutation, expected: bool) -> None:
    root = _repaired(type_)
    mutate(root)
    assert _agree(root, type_) == expected


def test_receipts_may_carry_a_signature_unlike_the_official_ones() -> None:
    """DELIBERATE DIFFERENCE (see ceb-common.xsd): our sandbox authorities sign receipts."""
    root = _sample("CEB604")
    root.append(_signature())
    assert schema_for(get_spec("CEB604")).validate(root)
    assert not _official().validate(root)


# ------------------------------------------------------------------------- corpus


@pytest.mark.parametrize("type_", EXPORT_TYPES)
def test_corpus_valid_documents_are_valid_in_both(type_: str) -> None:
    _official()  # skips without ../shared
    assert _agree(_corpus(type_), type_)


@pytest.mark.parametrize(
    "path",
    [p for t in DECLARATIONS for p in sorted((CORPUS / t).glob("invalid-*.xml"))],
    ids=lambda p: f"{p.parent.name}/{p.name}",
)
def test_corpus_invalid_documents_are_invalid_in_both(path: Path) -> None:
    _official()  # skips without ../shared
    assert not _agree(parse_xml(path.read_bytes()), path.parent.name)


@pytest.mark.parametrize("type_", DECLARATIONS)
def test_every_declaration_has_three_invalid_documents(type_: str) -> None:
    assert len(list((CORPUS / type_).glob("invalid-*.xml"))) >= 3


# Lengths around every limit the export edition uses, and number shapes.
_LIMITS = (1, 3, 4, 5, 8, 10, 14, 17, 18, 20, 30, 32, 36, 37, 50, 60, 100, 200, 250, 1000)
_VALUES = [
    *sorted({"x" * n for limit in _LIMITS for n in (limit, limit + 1)}),
    "",
    " 5 ",
    "3",
    "142",
    "1.12345",
    "1.123456",
    "-1",
    "12345",
    "123456",
    "1234567890",
    "123456789",
    "123456789012345.1234",
    "1234567890123456.1234",
    "abc",
    "  " + "y" * 200,
]


def _leaves(root: etree._Element) -> list[str]:
    """XPaths of every field (element without element children) below the root."""
    tree = root.getroottree()
    return [
        tree.getpath(e)
        for e in root.iter()
        if e is not root and isinstance(e.tag, str) and len(e) == 0
    ]


@pytest.mark.parametrize("type_", EXPORT_TYPES)
def test_boundary_sweep_over_every_field_agrees_with_official(type_: str) -> None:
    """For each field of the corpus document: delete it, repeat it, move it, and try every
    value in ``_VALUES``; our schema and the official one must always agree."""
    _official()  # skips without ../shared
    base = _corpus(type_)
    ours_schema = schema_for(get_spec(type_))
    disagreements: list[str] = []
    ns = {"ceb": CEB_NS}

    def check(what: str, root: etree._Element) -> None:
        ours = ours_schema.validate(root)
        if ours != _official().validate(root):
            disagreements.append(f"{what}: ours={ours}")

    for path in _leaves(base):
        for action in ("delete", "repeat", "swap"):
            root = copy.deepcopy(base)
            el = root.xpath(path, namespaces=ns)[0]
            if action == "delete":
                el.getparent().remove(el)
            elif action == "repeat":
                el.addnext(copy.deepcopy(el))
            elif el.getnext() is not None:
                el.addprevious(el.getnext())
            check(f"{path} {action}", root)
        for value in _VALUES:
            root = copy.deepcopy(base)
            root.xpath(path, namespaces=ns)[0].text = value
            check(f"{path} = {value[:20]!r} ({len(value)} chars)", root)
    assert disagreements == []


@pytest.mark.parametrize("type_", DECLARATIONS)
def test_message_level_structure_agrees_with_official(type_: str) -> None:
    """Documents 1..100, BaseTransfer, BaseSubscribe 0..5, ds:Signature, ExtendMessage."""
    doc = f"c:{get_spec(type_).document}[1]"
    cases: list[tuple[str, Mutation, bool]] = [
        ("unchanged", lambda r: None, True),
        ("100-documents", repeat_until(doc, 100), True),
        ("101-documents", repeat_until(doc, 101), False),
        ("no-documents", delete(f"c:{get_spec(type_).document}"), False),
        ("five-BaseSubscribe", both(*[insert_after(CT, SUBSCRIBE)] * 5), True),
        ("six-BaseSubscribe", both(*[insert_after(CT, SUBSCRIBE)] * 6), False),
        ("signed", lambda r: r.append(_signature()), True),
        (
            "signed-then-ExtendMessage",
            both(lambda r: r.append(_signature()), insert_after(SIGNATURE_LAST, EXTEND)),
            True,
        ),
        (
            "ExtendMessage-then-signed",
            both(insert_after(CT, EXTEND), lambda r: r.append(_signature())),
            False,
        ),
        ("empty-copCode", set_text(f"{CT}/c:copCode", ""), True),
        ("delete-BaseTransfer", delete(CT), False),
        ("BaseTransfer-first", move_before(CT, doc), False),
        ("two-BaseTransfer", duplicate(CT), False),
        ("unknown-root-attribute", set_attr("foo", "bar"), False),
    ]
    _official()  # skips without ../shared
    for name, mutate, expected in cases:
        root = _corpus(type_)
        mutate(root)
        assert _agree(root, type_) == expected, name


def test_missing_required_field_after_an_optional_one_is_named() -> None:
    """libxml2 says "expected one of preNo, invtNo"; only invtNo is required."""
    root = _corpus("CEB605")
    delete("c:InvtCancel[1]/c:invtNo")(root)
    violations = schema_violations(root, get_spec("CEB605"))
    assert ("/CEB605Message/InvtCancel[1]/invtNo", "schema.missing_element") in [
        (v.path, v.code) for v in violations
    ]


# ------------------------------------------------------- once-known validation gaps


def test_repeated_base_transfer_at_the_end_is_named() -> None:
    root = _corpus("CEB303")
    duplicate(CT)(root)
    violations = schema_violations(root, get_spec("CEB303"))
    assert [(v.path, v.code) for v in violations] == [
        ("/CEB303Message/BaseTransfer[2]", "schema.max_occurs")
    ]
