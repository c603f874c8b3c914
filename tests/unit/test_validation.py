"""detect() and schema_violations(): which message this is, and exactly what is wrong.

Documents are built here (no reference data needed), so the exact paths, lines and
codes a broker sees are pinned down.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
from lxml import etree

from gateway.domain.errors import UnknownMessageType
from gateway.xml.parsing import parse_xml
from gateway.xml.validation import MAX_VALUE_CHARS, MAX_VIOLATIONS, detect, schema_violations
from schemas import CEB_NS, get_spec

GUID = "4CDE1CFD-EDED-46B1-946C-B8022E42FC94"
NS = {"c": CEB_NS}

HEAD = """<InventoryHead>
<guid>{guid}</guid><appType>1</appType><appTime>20240102030405</appTime>
<appStatus>2</appStatus><orderNo>ORDER-{n}</orderNo><ebpCode>1101110325</ebpCode>
<ebpName>Platform</ebpName><ebcCode>1101110325</ebcCode><ebcName>Shop</ebcName>
<logisticsNo>L{n}</logisticsNo><logisticsCode>1101180326</logisticsCode>
<logisticsName>Carrier</logisticsName><assureCode>1105910159</assureCode>
<ieFlag>I</ieFlag><declTime>20240102</declTime><customsCode>3700</customsCode>
<portCode>3700</portCode><buyerIdType>1</buyerIdType>
<buyerIdNumber>110101199003070000</buyerIdNumber><buyerName>Li</buyerName>
<buyerTelephone>13800000000</buyerTelephone><consigneeAddress>Beijing</consigneeAddress>
<agentCode>1105910159</agentCode><agentName>Broker</agentName><tradeMode>9610</tradeMode>
<trafMode>5</trafMode><country>116</country><freight>0</freight><insuredFee>0</insuredFee>
<currency>142</currency><packNo>1</packNo><grossWeight>1.5</grossWeight>
<netWeight>1.2</netWeight>
</InventoryHead>"""

LINE = """<InventoryList>
<gnum>{g}</gnum><gcode>8541401000</gcode><gname>Goods {g}</gname><gmodel>44mm</gmodel>
<country>116</country><currency>142</currency><qty>1</qty><unit>007</unit>
<qty1>1</qty1><unit1>007</unit1><price>20</price><totalPrice>20</totalPrice>
</InventoryList>"""

TRANSFER = """<BaseTransfer><copCode>1105910159</copCode><copName>Broker</copName>
<dxpMode>DXP</dxpMode><dxpId>DXPENT0000000001</dxpId></BaseTransfer>"""


def ceb621(documents: int = 2, lines: int = 2) -> bytes:
    """An unsigned, valid CEB621 with one element per line of text, in the default ns."""
    body = "".join(
        "<Inventory>\n"
        + HEAD.format(guid=GUID, n=n)
        + "".join(LINE.format(g=g) for g in range(1, lines + 1))
        + "\n</Inventory>\n"
        for n in range(1, documents + 1)
    )
    return (
        f'<CEB621Message xmlns="{CEB_NS}" guid="{GUID}" version="1.0">\n'
        f"{body}{TRANSFER}\n</CEB621Message>"
    ).encode()


def broken(mutate: Callable[[bytes], bytes], **kw: int) -> etree._Element:
    """Parse a CEB621 after a textual mutation (so source lines are real)."""
    return parse_xml(mutate(ceb621(**kw)))


def nth_replace(old: str, new: str, n: int) -> Callable[[bytes], bytes]:
    """Replace only the n-th (1-based) occurrence of ``old``."""

    def mutate(data: bytes) -> bytes:
        text = data.decode()
        start = -1
        for _ in range(n):
            start = text.index(old, start + 1)
        return (text[:start] + new + text[start + len(old) :]).encode()

    return mutate


def line_of(root: etree._Element, xpath: str) -> int:
    """Source line of the element an XPath selects (prefix c: = CEB)."""
    return root.xpath(xpath, namespaces=NS)[0].sourceline


# --------------------------------------------------------------------------- detect


@pytest.mark.parametrize("message_type", ["CEB621", "CEB622", "CEB900"])
def test_detect_known_roots(message_type: str) -> None:
    root = etree.fromstring(f'<ceb:{message_type}Message xmlns:ceb="{CEB_NS}"/>'.encode())
    assert detect(root) is get_spec(message_type)


def test_detect_unknown_root_lists_known_types() -> None:
    root = parse_xml(f'<CEB999Message xmlns="{CEB_NS}"/>'.encode())
    with pytest.raises(UnknownMessageType) as caught:
        detect(root)
    [violation] = caught.value.violations
    assert (violation.path, violation.code) == ("/", "message.unknown_type")
    assert "CEB999Message" in violation.message
    for known in ("CEB621", "CEB311", "CEB603"):
        assert known in violation.message
    assert caught.value.extra["known_types"][0] == "CEB311"
    assert caught.value.status == 415


def test_detect_wrong_namespace_says_so() -> None:
    root = parse_xml(b'<CEB621Message xmlns="http://example.com/ceb"/>')
    with pytest.raises(UnknownMessageType) as caught:
        detect(root)
    [violation] = caught.value.violations
    assert violation.code == "message.unknown_type"
    assert "namespace 'http://example.com/ceb'" in violation.message
    assert f"must be in namespace '{CEB_NS}'" in violation.message


def test_detect_no_namespace_says_so() -> None:
    root = parse_xml(b"<CEB621Message/>")
    with pytest.raises(UnknownMessageType) as caught:
        detect(root)
    assert "no namespace" in caught.value.violations[0].message


def test_detect_refuses_a_bare_document_element() -> None:
    root = parse_xml(f'<Inventory xmlns="{CEB_NS}"/>'.encode())
    with pytest.raises(UnknownMessageType):
        detect(root)


def test_detect_clips_a_huge_root_name() -> None:
    root = parse_xml(f"<{'A' * 5000}/>".encode())
    with pytest.raises(UnknownMessageType) as caught:
        detect(root)
    assert len(caught.value.violations[0].message) < 400


# --------------------------------------------------------------- schema_violations


def test_valid_built_message_has_no_violations() -> None:
    root = parse_xml(ceb621())
    assert schema_violations(root, detect(root)) == []


def test_short_gcode_in_second_line() -> None:
    root = broken(nth_replace("<gcode>8541401000</gcode>", "<gcode>85414010</gcode>", 2))
    [v] = schema_violations(root, get_spec("CEB621"))
    assert v.path == "/CEB621Message/Inventory[1]/InventoryList[2]/gcode"
    assert v.code == "schema.length"
    assert v.message == "gcode must be exactly 10 characters (an HS code); got 8."
    assert v.value == "85414010"
    assert v.line == line_of(root, "c:Inventory[1]/c:InventoryList[2]/c:gcode")


def test_single_document_and_line_still_carry_indexes() -> None:
    root = broken(nth_replace("<gname>Goods 1</gname>", "<gname></gname>", 1), documents=1, lines=1)
    [v] = schema_violations(root, get_spec("CEB621"))
    assert v.path == "/CEB621Message/Inventory[1]/InventoryList[1]/gname"
    assert v.code == "schema.min_length"
    assert v.message == "gname must not be empty."


def test_errors_in_several_documents_are_all_reported_in_order() -> None:
    data = nth_replace("<currency>142</currency>", "<currency>502</currency>", 1)(ceb621())
    data = nth_replace("<freight>0</freight>", "<freight>1.123456</freight>", 2)(data)
    root = parse_xml(data)
    violations = schema_violations(root, get_spec("CEB621"))
    assert [(v.path, v.code, v.value) for v in violations] == [
        ("/CEB621Message/Inventory[1]/InventoryHead/currency", "schema.fixed_value", "502"),
        ("/CEB621Message/Inventory[2]/InventoryHead/freight", "schema.decimal", "1.123456"),
    ]
    assert violations[0].message == "currency must be exactly 142 (CNY); got '502'."
    assert "5 digits after the decimal point" in violations[1].message
    assert violations[1].line == line_of(root, "c:Inventory[2]/c:InventoryHead/c:freight")


def test_missing_required_element_points_where_it_belongs() -> None:
    root = broken(nth_replace("<orderNo>ORDER-2</orderNo>", "", 1))
    [v] = schema_violations(root, get_spec("CEB621"))
    assert v.path == "/CEB621Message/Inventory[2]/InventoryHead/orderNo"
    assert v.code == "schema.missing_element"
    assert v.message == "InventoryHead is missing the required element orderNo (before ebpCode)."
    assert v.line == line_of(root, "c:Inventory[2]/c:InventoryHead/c:ebpCode")


def test_missing_last_element() -> None:
    root = broken(nth_replace("<totalPrice>20</totalPrice>", "", 3))
    [v] = schema_violations(root, get_spec("CEB621"))
    assert v.path == "/CEB621Message/Inventory[2]/InventoryList[1]/totalPrice"
    assert v.code == "schema.missing_element"


def test_missing_base_transfer() -> None:
    root = broken(lambda d: d.replace(TRANSFER.encode(), b""))
    [v] = schema_violations(root, get_spec("CEB621"))
    assert (v.path, v.code) == ("/CEB621Message/BaseTransfer", "schema.missing_element")


def test_unknown_element() -> None:
    root = broken(nth_replace("<ebpCode>", "<surprise/><ebpCode>", 1))
    [v] = schema_violations(root, get_spec("CEB621"))
    assert v.path == "/CEB621Message/Inventory[1]/InventoryHead/surprise"
    assert v.code == "schema.unexpected_element"
    assert "expected ebpCode" in v.message


def test_element_out_of_order() -> None:
    root = broken(nth_replace("<ebpName>Platform</ebpName>", "", 1))
    root = parse_xml(
        etree.tostring(root).replace(
            b"<ebpCode>1101110325</ebpCode>",
            b"<ebpName>P</ebpName><ebpCode>1101110325</ebpCode>",
            1,
        )
    )
    [v] = schema_violations(root, get_spec("CEB621"))
    assert v.path == "/CEB621Message/Inventory[1]/InventoryHead/ebpName"
    assert v.code == "schema.unexpected_element"


def test_duplicate_head() -> None:
    data = ceb621(documents=1, lines=1).decode()
    head = data[data.index("<InventoryHead>") : data.index("</InventoryHead>") + 16]
    root = parse_xml(data.replace(head, head + head).encode())
    [v] = schema_violations(root, get_spec("CEB621"))
    assert v.path == "/CEB621Message/Inventory[1]/InventoryHead[2]"
    assert v.code == "schema.max_occurs"


def test_too_many_documents() -> None:
    root = parse_xml(ceb621(documents=101, lines=1))
    [v] = schema_violations(root, get_spec("CEB621"))
    assert v.path == "/CEB621Message/Inventory[101]"
    assert v.code == "schema.max_occurs"
    assert "at most 100" in v.message


def test_too_many_lines() -> None:
    root = parse_xml(ceb621(documents=1, lines=100))
    [v] = schema_violations(root, get_spec("CEB621"))
    assert v.path == "/CEB621Message/Inventory[1]/InventoryList[100]"
    assert v.code == "schema.max_occurs"
    assert "at most 99" in v.message


def test_wrong_namespace_child() -> None:
    root = broken(nth_replace("<appType>1</appType>", '<appType xmlns="">1</appType>', 1))
    [v] = schema_violations(root, get_spec("CEB621"))
    assert v.path == "/CEB621Message/Inventory[1]/InventoryHead/appType"
    assert v.code == "schema.wrong_namespace"


def test_attributes() -> None:
    root = broken(lambda d: d.replace(f' guid="{GUID}"'.encode(), b' foo="1"', 1))
    violations = schema_violations(root, get_spec("CEB621"))
    assert {(v.path, v.code) for v in violations} == {
        ("/CEB621Message/@foo", "schema.unexpected_attribute"),
        ("/CEB621Message/@guid", "schema.missing_attribute"),
    }
    assert all(v.line == 1 for v in violations)


def test_attribute_value() -> None:
    root = broken(lambda d: d.replace(b'version="1.0"', b'version="12345678901"', 1))
    [v] = schema_violations(root, get_spec("CEB621"))
    assert (v.path, v.code, v.value) == (
        "/CEB621Message/@version",
        "schema.max_length",
        "12345678901",
    )


def test_not_a_number() -> None:
    root = broken(nth_replace("<gnum>2</gnum>", "<gnum>two</gnum>", 1))
    [v] = schema_violations(root, get_spec("CEB621"))
    assert (v.path, v.code) == (
        "/CEB621Message/Inventory[1]/InventoryList[2]/gnum",
        "schema.integer",
    )
    root = broken(nth_replace("<qty>1</qty>", "<qty>lots</qty>", 1))
    [v] = schema_violations(root, get_spec("CEB621"))
    assert v.code == "schema.decimal"
    assert v.message == "qty must be a decimal number; got 'lots'."


def test_long_values_are_clipped() -> None:
    root = broken(nth_replace("<ebpName>Platform</ebpName>", f"<ebpName>{'x' * 5000}</ebpName>", 1))
    [v] = schema_violations(root, get_spec("CEB621"))
    assert v.code == "schema.max_length"
    assert v.message == "ebpName must be at most 100 characters; got 5000."
    assert v.value is not None
    assert len(v.value) == MAX_VALUE_CHARS
    assert v.value.endswith("...")


def test_receipt_paths_index_the_document_only() -> None:
    guid = GUID
    ret = (
        f"<InventoryReturn><guid>{guid}</guid><copNo>c1</copNo>"
        "<preNo>B20160512000001882</preNo><returnStatus>2</returnStatus>"
        "<returnTime>20160512102646001</returnTime><returnInfo>ok</returnInfo>"
        "</InventoryReturn>"
    )
    bad = ret.replace("<preNo>B20160512000001882</preNo>", "<preNo>B2016</preNo>")
    data = (
        f'<CEB622Message xmlns="{CEB_NS}" guid="{guid}" version="1.0">{ret}{bad}</CEB622Message>'
    ).encode()
    root = parse_xml(data)
    [v] = schema_violations(root, detect(root))
    assert v.path == "/CEB622Message/InventoryReturn[2]/preNo"
    assert v.code == "schema.length"
    assert "B + YYYYMMDD + 9 digits" in v.message


def test_ceb900_missing_field() -> None:
    data = (
        f'<CEB900Message xmlns="{CEB_NS}" guid="{GUID}" version="1.0"><MessageReturn>'
        f"<guid>{GUID}</guid><returnStatus>-1</returnStatus><returnInfo/>"
        "<returnTime>20240102030405006</returnTime><oriCopMsgId/>"
        "<oriMessageType>CEB621Message</oriMessageType></MessageReturn></CEB900Message>"
    )
    root = parse_xml(data.encode())
    [v] = schema_violations(root, detect(root))
    assert v.path == "/CEB900Message/MessageReturn[1]/oriBizMessage"
    assert v.code == "schema.missing_element"


def test_prefixed_document_paths_have_no_prefixes() -> None:
    data = ceb621(documents=1, lines=2).decode()
    data = data.replace(f'xmlns="{CEB_NS}"', f'xmlns:ceb="{CEB_NS}"')
    data = data.replace("<", "<ceb:").replace("<ceb:/", "</ceb:")
    data = data.replace("<ceb:gcode>8541401000</ceb:gcode>", "<ceb:gcode>1</ceb:gcode>", 1)
    root = parse_xml(data.encode())
    [v] = schema_violations(root, detect(root))
    assert v.path == "/CEB621Message/Inventory[1]/InventoryList[1]/gcode"


def test_every_violation_has_a_sentence_and_a_schema_code() -> None:
    data = ceb621().replace(b"<currency>142</currency>", b"<currency>1</currency>")
    root = parse_xml(data.replace(b"<ieFlag>I</ieFlag>", b""))
    violations = schema_violations(root, get_spec("CEB621"))
    assert len(violations) >= 4
    for v in violations:
        assert v.code.startswith("schema.")
        assert v.message.endswith(".")
        assert "{" not in v.message  # no Clark names leak into messages
        assert v.path.startswith("/CEB621Message/")


def test_concurrent_failures_keep_their_own_errors() -> None:
    """lxml keeps the error log on the schema object; each thread must see only its own."""
    docs = {
        n: broken(
            nth_replace("<gcode>8541401000</gcode>", "<gcode>1</gcode>", n), documents=4, lines=2
        )
        for n in range(1, 9)
    }
    results: dict[int, list[str]] = {}

    def work(n: int) -> None:
        for _ in range(20):
            paths = [v.path for v in schema_violations(docs[n], get_spec("CEB621"))]
            results.setdefault(n, []).extend(paths)

    threads = [threading.Thread(target=work, args=(n,)) for n in docs]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for n, paths in results.items():
        doc, line = (n - 1) // 2 + 1, (n - 1) % 2 + 1
        expected = f"/CEB621Message/Inventory[{doc}]/InventoryList[{line}]/gcode"
        assert paths == [expected] * 20


def test_a_flood_of_errors_is_truncated() -> None:
    data = ceb621(documents=100, lines=3)
    root = parse_xml(data.replace(b"<gcode>8541401000</gcode>", b"<gcode>1</gcode>"))
    violations = schema_violations(root, get_spec("CEB621"))
    assert len(violations) == MAX_VIOLATIONS + 1
    assert violations[-1].code == "schema.truncated"
    assert violations[-1].message.startswith("100 more")
    assert violations[0].path == "/CEB621Message/Inventory[1]/InventoryList[1]/gcode"
