"""Our CEB schemas: the registry table, the official samples, and a differential test.

The differential test mutates the official samples and checks that our schema and the
official GACC 2022-05 ``import.xsd`` agree on valid/invalid, and that both give the
outcome we expect (so a mutation that silently changes nothing cannot pass unnoticed).
Tests that need ``../shared`` skip cleanly when it is absent.
"""

from __future__ import annotations

import copy
import functools
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from lxml import etree

from gateway.xml.parsing import parse_xml
from schemas import CEB_NS, MessageSpec, all_specs, find_spec, get_spec, schema_for
from schemas.registry import CEB_SCHEMA_DIR, compile_schema

SHARED = Path(__file__).parents[2].parent / "shared"
OFFICIAL_XSD = SHARED / "ceb-official" / "xsd202205" / "import.xsd"
SAMPLES = SHARED / "ceb-official" / "samples202205"
PUBLIC_SIGNED = SHARED / "samples" / "public" / "CEB621Message_signed.xml"
DS_NS = "http://www.w3.org/2000/09/xmldsig#"
C = f"{{{CEB_NS}}}"
NS = {"c": CEB_NS, "ds": DS_NS}

Mutation = Callable[[etree._Element], None]


def _need(path: Path) -> Path:
    """Skip the test when the shared reference data is not checked out beside the project."""
    if not path.exists():
        pytest.skip(f"reference data not available: {path}")
    return path


def _load(path: Path) -> etree._Element:
    """Parse a sample through the gateway's hardened parser (handles the UTF-8 BOM)."""
    return parse_xml(_need(path).read_bytes())


@functools.cache
def _official_schema() -> etree.XMLSchema:
    """The official import.xsd; it imports xmldsig-core-schema.xsd from beside it."""
    parser = etree.XMLParser(no_network=True, load_dtd=True, resolve_entities=False)
    return etree.XMLSchema(etree.parse(str(_need(OFFICIAL_XSD)), parser))


# ------------------------------------------------------------------------ registry


def test_registry_lists_every_message_type_once_and_each_declaration_has_its_reply() -> None:
    types = [s.type for s in all_specs()]
    assert len(types) == len(set(types)) and {"CEB621", "CEB622", "CEB900"} <= set(types)
    for spec in all_specs():
        if spec.kind == "declaration":
            assert spec.reply in types and get_spec(spec.reply).kind == "receipt", spec.type


def test_get_spec_describes_ceb621() -> None:
    spec = get_spec("CEB621")
    assert spec == MessageSpec(
        type="CEB621",
        root="CEB621Message",
        namespace=CEB_NS,
        xsd=CEB_SCHEMA_DIR / "CEB621.xsd",
        kind="declaration",
        document="Inventory",
        head="InventoryHead",
        reply="CEB622",
        title="import inventory list",
    )


def test_receipts_have_no_head_or_reply() -> None:
    for name, document in (("CEB622", "InventoryReturn"), ("CEB900", "MessageReturn")):
        spec = get_spec(name)
        assert (spec.kind, spec.document, spec.head, spec.reply) == (
            "receipt",
            document,
            None,
            None,
        )


def test_get_spec_unknown_raises_key_error() -> None:
    with pytest.raises(KeyError, match="CEB999"):
        get_spec("CEB999")


def test_find_spec_by_namespace_and_root() -> None:
    assert find_spec(CEB_NS, "CEB622Message") is get_spec("CEB622")
    assert find_spec("http://example.com/other", "CEB622Message") is None
    assert find_spec(None, "CEB622Message") is None
    assert find_spec(CEB_NS, "Inventory") is None


@pytest.mark.parametrize("spec", all_specs(), ids=lambda s: s.type)
def test_every_row_has_a_schema_declaring_its_root(spec: MessageSpec) -> None:
    assert spec.xsd.is_file()
    tree = etree.parse(str(spec.xsd))
    xs = "http://www.w3.org/2001/XMLSchema"
    globals_ = tree.getroot().xpath("xs:element/@name", namespaces={"xs": xs})
    assert globals_ == [spec.root]  # only the message root is global
    assert tree.getroot().get("targetNamespace") == spec.namespace
    assert tree.getroot().get("elementFormDefault") == "qualified"
    if spec.reply is not None:
        assert get_spec(spec.reply).kind == "receipt"


@pytest.mark.parametrize("xsd", sorted(CEB_SCHEMA_DIR.glob("*.xsd")), ids=lambda p: p.name)
def test_every_schema_file_states_its_version(xsd: Path) -> None:
    head = xsd.read_text(encoding="utf-8")[:600]
    assert "Gateway schema version 1" in head
    assert "2022-05" in head


def test_schema_for_is_cached_and_compile_schema_is_fresh() -> None:
    spec = get_spec("CEB621")
    assert schema_for(spec) is schema_for(spec)
    assert compile_schema(spec) is not schema_for(spec)


def test_schema_for_is_usable_from_many_threads() -> None:
    spec = get_spec("CEB900")
    results: list[bool] = []

    def work() -> None:
        results.append(schema_for(spec).validate(_ceb900()))

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 8


# ------------------------------------------------------------------------ samples


@pytest.mark.parametrize("name", ["CEB621", "CEB622"])
def test_official_sample_validates_against_ours(name: str) -> None:
    root = _load(SAMPLES / f"{name}Message.xml")
    schema = schema_for(get_spec(name))
    assert schema.validate(root), schema.error_log


def test_public_signed_ceb621_validates_against_ours() -> None:
    root = _load(PUBLIC_SIGNED)
    assert root.get("version") == "v1.0"
    schema = schema_for(get_spec("CEB621"))
    assert schema.validate(root), schema.error_log


def test_unsigned_declaration_valid_for_us_but_not_officially() -> None:
    """The one deliberate difference: we validate before signing."""
    root = _load(SAMPLES / "CEB621Message.xml")
    signature = root.find("ds:Signature", NS)
    assert signature is not None
    root.remove(signature)
    assert schema_for(get_spec("CEB621")).validate(root)
    assert not _official_schema().validate(root)


def test_signed_receipt_valid_for_us_but_not_officially() -> None:
    """Our sandbox authorities sign receipts; the official CEB622 has no signature."""
    root = _load(SAMPLES / "CEB622Message.xml")
    etree.SubElement(root, f"{{{DS_NS}}}Signature")
    assert schema_for(get_spec("CEB622")).validate(root)
    assert not _official_schema().validate(root)


def test_signature_must_be_last_and_in_the_dsig_namespace() -> None:
    root = _load(SAMPLES / "CEB621Message.xml")
    signature = root.find("ds:Signature", NS)
    root.remove(signature)
    root.insert(0, signature)
    assert not schema_for(get_spec("CEB621")).validate(root)
    root.remove(signature)
    etree.SubElement(root, f"{{{DS_NS}}}NotASignature")
    assert not schema_for(get_spec("CEB621")).validate(root)


# -------------------------------------------------------------- mutation helpers


def _first(root: etree._Element, path: str) -> etree._Element:
    """The first element at an XPath with prefix c: for the CEB namespace."""
    found = root.xpath(path, namespaces=NS)
    assert found, path
    return found[0]


def set_text(path: str, text: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        _first(root, path).text = text

    return mutate


def delete(path: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        for el in root.xpath(path, namespaces=NS):
            el.getparent().remove(el)

    return mutate


def set_attr(name: str, value: str | None) -> Mutation:
    def mutate(root: etree._Element) -> None:
        if value is None:
            root.attrib.pop(name)
        else:
            root.set(name, value)

    return mutate


def swap_with_next(path: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        el = _first(root, path)
        el.addprevious(el.getnext())

    return mutate


def duplicate(path: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        el = _first(root, path)
        el.addnext(copy.deepcopy(el))

    return mutate


def repeat_until(path: str, total: int) -> Mutation:
    """Copy the element at ``path`` until its parent holds ``total`` elements of its name."""

    def mutate(root: etree._Element) -> None:
        el = _first(root, path)
        while len(el.getparent().findall(el.tag)) < total:
            el.addnext(copy.deepcopy(el))

    return mutate


def insert_after(path: str, xml: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        new = etree.fromstring(xml.replace("NS", CEB_NS))
        _first(root, path).addnext(new)

    return mutate


def move_before(path: str, anchor: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        el = _first(root, path)
        _first(root, anchor).addprevious(el)

    return mutate


def set_tail_text(path: str, text: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        _first(root, path).tail = text

    return mutate


def unqualify(path: str) -> Mutation:
    def mutate(root: etree._Element) -> None:
        el = _first(root, path)
        el.tag = etree.QName(el).localname

    return mutate


def both(*mutations: Mutation) -> Mutation:
    def mutate(root: etree._Element) -> None:
        for m in mutations:
            m(root)

    return mutate


H = "c:Inventory[1]/c:InventoryHead"
L = "c:Inventory[1]/c:InventoryList[1]"
SUBSCRIBE = (
    '<c:BaseSubscribe xmlns:c="NS"><c:status>ALL</c:status><c:dxpMode>DXP</c:dxpMode>'
    "<c:dxpAddress>DXPENT0000000001</c:dxpAddress></c:BaseSubscribe>"
)
EXTEND = (
    '<c:ExtendMessage xmlns:c="NS"><c:name>x</c:name><c:version>1</c:version>'
    "<c:Message><any><thing/></any></c:Message></c:ExtendMessage>"
)
EXTEND_TWO = (
    '<c:ExtendMessage xmlns:c="NS"><c:name>x</c:name><c:version>1</c:version>'
    "<c:Message><a/><b/></c:Message></c:ExtendMessage>"
)

# (id, mutation, expected valid) on the official CEB621 sample (which carries a signature).
CEB621_MUTATIONS: list[tuple[str, Mutation, bool]] = [
    ("unchanged", lambda r: None, True),
    ("delete-required-orderNo", delete(f"{H}/c:orderNo"), False),
    ("delete-required-last-netWeight", delete(f"{H}/c:netWeight"), False),
    ("delete-optional-copNo", delete(f"{H}/c:copNo"), True),
    ("delete-optional-ieDate-everywhere", delete("//c:ieDate"), True),
    ("delete-optional-list-note", delete(f"{L}/c:note"), True),
    ("overlong-ebpName-101", set_text(f"{H}/c:ebpName", "x" * 101), False),
    ("max-ebpName-100", set_text(f"{H}/c:ebpName", "企" * 100), True),
    ("gcode-9-chars", set_text(f"{L}/c:gcode", "854140100"), False),
    ("gcode-11-chars", set_text(f"{L}/c:gcode", "85414010001"), False),
    ("freight-6-fraction-digits", set_text(f"{H}/c:freight", "1.123456"), False),
    ("freight-5-fraction-digits", set_text(f"{H}/c:freight", "1.12345"), True),
    ("freight-20-digits", set_text(f"{H}/c:freight", "123456789012345.67891"), False),
    ("freight-not-a-number", set_text(f"{H}/c:freight", "abc"), False),
    ("freight-negative", set_text(f"{H}/c:freight", "-1.5"), True),
    ("head-currency-502", set_text(f"{H}/c:currency", "502"), False),
    ("list-currency-with-space", set_text(f"{L}/c:currency", " 142"), False),
    ("swap-ebpCode-ebpName", swap_with_next(f"{H}/c:ebpCode"), False),
    ("duplicate-head", duplicate(H), False),
    ("101-documents", repeat_until("c:Inventory[1]", 101), False),
    ("100-documents", repeat_until("c:Inventory[1]", 100), True),
    ("100-lines", repeat_until(L, 100), False),
    ("99-lines", repeat_until(L, 99), True),
    ("no-lines", delete("c:Inventory[1]/c:InventoryList"), False),
    ("extra-unknown-element", insert_after(f"{H}/c:orderNo", '<c:foo xmlns:c="NS"/>'), False),
    ("empty-required-orderNo", set_text(f"{H}/c:orderNo", ""), False),
    ("empty-optional-preNo", set_text(f"{H}/c:preNo", ""), True),
    ("empty-exact-optional-ieDate", set_text(f"{H}/c:ieDate", ""), False),
    ("empty-optional-tradeCountry", set_text(f"{L}/c:tradeCountry", ""), False),
    ("appStatus-4-chars", set_text(f"{H}/c:appStatus", "1234"), False),
    ("packNo-10-digits", set_text(f"{H}/c:packNo", "1234567890"), False),
    ("packNo-decimal", set_text(f"{H}/c:packNo", "1.5"), False),
    ("gnum-not-int", set_text(f"{L}/c:gnum", "one"), False),
    ("no-guid-attribute", set_attr("guid", None), False),
    ("guid-35-chars", set_attr("guid", "x" * 35), False),
    ("guid-not-hex", set_attr("guid", "CEB621_HNZB_FXJK_20220208175054_0034"), True),
    ("version-v1.0", set_attr("version", "v1.0"), True),
    ("version-11-chars", set_attr("version", "1" * 11), False),
    ("unknown-root-attribute", set_attr("foo", "bar"), False),
    ("delete-BaseTransfer", delete("c:BaseTransfer"), False),
    ("BaseTransfer-first", move_before("c:BaseTransfer", "c:Inventory[1]"), False),
    ("dxpMode-2-chars", set_text("c:BaseTransfer/c:dxpMode", "DX"), False),
    ("one-BaseSubscribe", insert_after("c:BaseTransfer", SUBSCRIBE), True),
    ("six-BaseSubscribe", both(*[insert_after("c:BaseTransfer", SUBSCRIBE)] * 6), False),
    ("ExtendMessage", insert_after("c:BaseTransfer", EXTEND), True),
    ("ExtendMessage-two-children", insert_after("c:BaseTransfer", EXTEND_TWO), False),
    ("text-in-Inventory", set_tail_text(H, "stray text"), False),
    ("orderNo-without-namespace", unqualify(f"{H}/c:orderNo"), False),
]

R = "c:InventoryReturn[1]"
INVT_NO = '<c:invtNo xmlns:c="NS">{}</c:invtNo>'
CEB622_MUTATIONS: list[tuple[str, Mutation, bool]] = [
    ("unchanged", lambda r: None, True),
    ("delete-required-guid", delete(f"{R}/c:guid"), False),
    ("delete-required-last-returnInfo", delete(f"{R}/c:returnInfo"), False),
    ("delete-required-copNo", delete(f"{R}/c:copNo"), False),
    ("delete-optional-customsCode", delete(f"{R}/c:customsCode"), True),
    ("delete-optional-codes", delete("//c:ebpCode | //c:ebcCode | //c:agentCode"), True),
    ("empty-optional-ebpCode", set_text(f"{R}/c:ebpCode", ""), False),
    ("customsCode-5-chars", set_text(f"{R}/c:customsCode", "15010"), False),
    ("agentCode-19-chars", set_text(f"{R}/c:agentCode", "1" * 19), False),
    ("copNo-21-chars", set_text(f"{R}/c:copNo", "c" * 21), False),
    ("copNo-20-chars", set_text(f"{R}/c:copNo", "c" * 20), True),
    ("empty-copNo", set_text(f"{R}/c:copNo", ""), False),
    ("preNo-17-chars", set_text(f"{R}/c:preNo", "B2016051200000188"), False),
    ("invtNo-18", insert_after(f"{R}/c:preNo", INVT_NO.format("150120161000001234")), True),
    ("invtNo-17", insert_after(f"{R}/c:preNo", INVT_NO.format("15012016100000123")), False),
    ("invtNo-empty", insert_after(f"{R}/c:preNo", INVT_NO.format("")), False),
    ("returnStatus-120", set_text(f"{R}/c:returnStatus", "120"), True),
    ("returnStatus-11-chars", set_text(f"{R}/c:returnStatus", "1" * 11), False),
    ("returnStatus-empty", set_text(f"{R}/c:returnStatus", ""), False),
    ("returnTime-16-chars", set_text(f"{R}/c:returnTime", "2016051210264600"), False),
    ("returnInfo-empty", set_text(f"{R}/c:returnInfo", ""), False),
    ("returnInfo-1000", set_text(f"{R}/c:returnInfo", "退" * 1000), True),
    ("returnInfo-1001", set_text(f"{R}/c:returnInfo", "退" * 1001), False),
    ("swap-returnTime-returnInfo", swap_with_next(f"{R}/c:returnTime"), False),
    ("duplicate-guid-element", duplicate(f"{R}/c:guid"), False),
    ("100-returns", repeat_until(R, 100), True),
    ("101-returns", repeat_until(R, 101), False),
    ("no-returns", delete("c:InventoryReturn"), False),
    ("extra-unknown-element", insert_after(f"{R}/c:copNo", '<c:foo xmlns:c="NS"/>'), False),
    ("BaseTransfer-in-receipt", insert_after(R, '<c:BaseTransfer xmlns:c="NS"/>'), False),
    ("guid-attribute-37", set_attr("guid", "x" * 37), False),
    ("no-version", set_attr("version", None), False),
    ("text-in-return", set_tail_text(f"{R}/c:guid", "x"), False),
    ("guid-without-namespace", unqualify(f"{R}/c:guid"), False),
]


def _differential(sample: Path, spec: MessageSpec, mutate: Mutation, expected: bool) -> None:
    """Apply one mutation and require ours == official == expected."""
    root = _load(sample)
    mutate(root)
    ours = schema_for(spec).validate(root)
    official = _official_schema().validate(root)
    assert ours == official, f"ours={ours} official={official}: {_official_schema().error_log}"
    assert ours == expected


@pytest.mark.parametrize(
    ("mutate", "expected"), [pytest.param(m, e, id=i) for i, m, e in CEB621_MUTATIONS]
)
def test_ceb621_agrees_with_official(mutate: Mutation, expected: bool) -> None:
    """CEB621 samples keep their ds:Signature, which the official schema requires."""
    _differential(SAMPLES / "CEB621Message.xml", get_spec("CEB621"), mutate, expected)


@pytest.mark.parametrize(
    ("mutate", "expected"), [pytest.param(m, e, id=i) for i, m, e in CEB622_MUTATIONS]
)
def test_ceb622_agrees_with_official(mutate: Mutation, expected: bool) -> None:
    """CEB622 samples carry no signature, as the official receipt schema demands."""
    _differential(SAMPLES / "CEB622Message.xml", get_spec("CEB622"), mutate, expected)


def test_public_signed_sample_agrees_with_official() -> None:
    root = _load(PUBLIC_SIGNED)
    assert schema_for(get_spec("CEB621")).validate(root)
    assert _official_schema().validate(root)


# --------------------------------------------------------------------- CEB900


def _ceb900() -> etree._Element:
    """A format-error receipt built by hand (there is no official CEB900 sample)."""
    guid = "0B7D6A4C-3D2E-4F10-9A8B-7C6D5E4F3A2B"
    xml = f"""<CEB900Message xmlns="{CEB_NS}" guid="{guid}" version="1.0">
  <MessageReturn>
    <guid>{guid}</guid>
    <returnStatus>-301010</returnStatus>
    <returnInfo>报文格式错误</returnInfo>
    <returnTime>20240102030405006</returnTime>
    <oriCopMsgId>copmsg-1</oriCopMsgId>
    <oriMessageType>CEB621Message</oriMessageType>
    <oriBizMessage>&lt;CEB621Message/&gt;</oriBizMessage>
  </MessageReturn>
</CEB900Message>"""
    return etree.fromstring(xml.encode())


MR = "c:MessageReturn"
CEB900_MUTATIONS: list[tuple[str, Mutation, bool]] = [
    ("unchanged", lambda r: None, True),
    ("empty-returnInfo", set_text(f"{MR}/c:returnInfo", ""), True),
    ("empty-oriBizMessage", set_text(f"{MR}/c:oriBizMessage", ""), True),
    ("huge-oriBizMessage", set_text(f"{MR}/c:oriBizMessage", "x" * 100_000), True),
    ("returnInfo-5001", set_text(f"{MR}/c:returnInfo", "x" * 5001), False),
    ("oriMessageType-16", set_text(f"{MR}/c:oriMessageType", "x" * 16), False),
    ("oriCopMsgId-256", set_text(f"{MR}/c:oriCopMsgId", "x" * 256), False),
    ("returnTime-14", set_text(f"{MR}/c:returnTime", "20240102030405"), False),
    ("returnStatus-empty", set_text(f"{MR}/c:returnStatus", ""), False),
    ("delete-oriBizMessage", delete(f"{MR}/c:oriBizMessage"), False),
    ("two-MessageReturn", duplicate(MR), False),
]


@pytest.mark.parametrize(
    ("mutate", "expected"), [pytest.param(m, e, id=i) for i, m, e in CEB900_MUTATIONS]
)
def test_ceb900_agrees_with_official(mutate: Mutation, expected: bool) -> None:
    root = _ceb900()
    mutate(root)
    ours = schema_for(get_spec("CEB900")).validate(root)
    assert ours == expected
    assert _official_schema().validate(root) == ours
