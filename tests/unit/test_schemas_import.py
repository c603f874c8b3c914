"""Differential tests of our IMPORT-family CEB schemas against the official 2022-05 import.xsd.

For every official import sample (and, for the tax messages that have no official sample,
our own corpus document), deterministic mutations must be judged alike by our schema and
the official one, and both must give the outcome we expect. The one deliberate difference
(the trailing ds:Signature is optional in ours) is tested on its own. Tests that need
``../shared`` skip cleanly when it is absent; CEB621/CEB622 are covered in test_schemas.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from schemas import all_specs, get_spec, schema_for
from tests.unit.test_schemas import (
    DS_NS,
    EXTEND,
    NS,
    SAMPLES,
    SUBSCRIBE,
    Mutation,
    _load,
    _official_schema,
    both,
    delete,
    duplicate,
    insert_after,
    repeat_until,
    set_attr,
    set_tail_text,
    set_text,
    swap_with_next,
    unqualify,
)

CORPUS = Path(__file__).resolve().parents[1] / "data" / "messages"

DECLARATIONS = ["CEB311", "CEB411", "CEB511", "CEB513", "CEB623", "CEB625", "CEB711"]
RECEIPTS = ["CEB312", "CEB412", "CEB512", "CEB514", "CEB624", "CEB626", "CEB712"]
# Official schema: the signature is optional for these declarations, required for the rest.
OFFICIALLY_OPTIONAL_SIGNATURE = {"CEB311", "CEB411", "CEB511", "CEB513"}

Case = tuple[str, Mutation, bool]


def _unchanged(root: etree._Element) -> None:
    """The sample as published."""


def _extra(path: str) -> Mutation:
    """An element our schemas and the official one both do not know, right after ``path``."""
    return insert_after(path, '<c:foo xmlns:c="NS">x</c:foo>')


def _common_declaration(doc: str, first_field: str) -> list[Case]:
    """Message-level mutations shared by every declaration (the transfer block, limits)."""
    return [
        ("unchanged", _unchanged, True),
        ("delete-BaseTransfer", delete("c:BaseTransfer"), False),
        ("dxpMode-4-chars", set_text("c:BaseTransfer/c:dxpMode", "DXPX"), False),
        ("one-BaseSubscribe", insert_after("c:BaseTransfer", SUBSCRIBE), True),
        ("six-BaseSubscribe", both(*[insert_after("c:BaseTransfer", SUBSCRIBE)] * 6), False),
        ("ExtendMessage", insert_after("c:BaseTransfer", EXTEND), True),
        ("no-guid-attribute", set_attr("guid", None), False),
        ("guid-attribute-37", set_attr("guid", "x" * 37), False),
        ("text-between-fields", set_tail_text(f"{first_field}", "stray"), False),
        ("field-without-namespace", unqualify(first_field), False),
        ("no-documents", delete(doc.split("[")[0]), False),
    ]


def _hundred_documents(doc: str) -> list[Case]:
    return [
        ("100-documents", repeat_until(doc, 100), True),
        ("101-documents", repeat_until(doc, 101), False),
    ]


H311 = "c:Order[1]/c:OrderHead"
L311 = "c:Order[1]/c:OrderList[1]"
H411 = "c:Payment[1]/c:PaymentHead"
H511 = "c:Logistics[1]/c:LogisticsHead"
D513 = "c:LogisticsStatus[1]"
D623 = "c:InvtCancel[1]"
H625 = "c:InvtRefund[1]/c:InvtRefundHead"
L625 = "c:InvtRefund[1]/c:InvtRefundList[1]"
NOTE = '<c:note xmlns:c="NS">{}</c:note>'
H711 = "c:Delivery/c:DeliveryHead"
L711 = "c:Delivery/c:DeliveryList[1]"

DECLARATION_CASES: dict[str, list[Case]] = {
    "CEB311": [
        *_common_declaration("c:Order[1]", f"{H311}/c:orderNo"),
        *_hundred_documents("c:Order[1]"),
        ("delete-required-orderType", delete(f"{H311}/c:orderType"), False),
        ("delete-required-list-country", delete(f"{L311}/c:country"), False),
        ("delete-optional-pay-fields", delete(f"{H311}/c:payCode | {H311}/c:payName"), True),
        ("delete-optional-everywhere", delete("//c:consigneeDistrict | //c:itemDescribe"), True),
        ("empty-optional-payCode", set_text(f"{H311}/c:payCode", ""), True),
        ("buyerName-60", set_text(f"{H311}/c:buyerName", "买" * 60), True),
        ("buyerName-61", set_text(f"{H311}/c:buyerName", "买" * 61), False),
        ("consigneeTelephone-51", set_text(f"{H311}/c:consigneeTelephone", "1" * 51), False),
        ("consigneeDistrict-7", set_text(f"{H311}/c:consigneeDistrict", "1234567"), False),
        ("payTransactionId-61", set_text(f"{H311}/c:payTransactionId", "p" * 61), False),
        ("acturalPaid-5-fraction-digits", set_text(f"{H311}/c:acturalPaid", "1.12345"), True),
        ("acturalPaid-6-fraction-digits", set_text(f"{H311}/c:acturalPaid", "1.123456"), False),
        ("goodsValue-20-digits", set_text(f"{H311}/c:goodsValue", "1" * 20), False),
        ("qty-not-a-number", set_text(f"{L311}/c:qty", "two"), False),
        ("list-currency-502", set_text(f"{L311}/c:currency", "502"), False),
        ("gnum-not-int", set_text(f"{L311}/c:gnum", "1.0"), False),
        ("swap-price-totalPrice", swap_with_next(f"{L311}/c:price"), False),
        ("duplicate-head", duplicate(H311), False),
        ("99-lines", repeat_until(L311, 99), True),
        ("100-lines", repeat_until(L311, 100), False),
        ("no-lines", delete("c:Order[1]/c:OrderList"), False),
        ("extra-element", _extra(f"{H311}/c:orderNo"), False),
    ],
    "CEB411": [
        *_common_declaration("c:Payment[1]", f"{H411}/c:payCode"),
        *_hundred_documents("c:Payment[1]"),
        ("delete-required-payTime", delete(f"{H411}/c:payTime"), False),
        ("delete-optional-telephone", delete(f"{H411}/c:telephone"), True),
        ("delete-optional-notes", delete("//c:note"), True),
        ("empty-optional-telephone", set_text(f"{H411}/c:telephone", ""), True),
        ("telephone-61", set_text(f"{H411}/c:telephone", "1" * 61), False),
        ("payerName-61", set_text(f"{H411}/c:payerName", "付" * 61), False),
        ("empty-payTransactionId", set_text(f"{H411}/c:payTransactionId", ""), False),
        ("amountPaid-6-fraction-digits", set_text(f"{H411}/c:amountPaid", "9.000001"), False),
        ("amountPaid-negative", set_text(f"{H411}/c:amountPaid", "-1"), True),
        ("payTime-13-chars", set_text(f"{H411}/c:payTime", "2016030811270"), False),
        ("currency-with-space", set_text(f"{H411}/c:currency", "142 "), False),
        ("swap-payCode-payName", swap_with_next(f"{H411}/c:payCode"), False),
        ("duplicate-head", duplicate(H411), False),
        ("extra-element", _extra(f"{H411}/c:orderNo"), False),
        ("line-in-payment", _extra(H411), False),
    ],
    "CEB511": [
        *_common_declaration("c:Logistics[1]", f"{H511}/c:logisticsCode"),
        *_hundred_documents("c:Logistics[1]"),
        ("delete-required-weight", delete(f"{H511}/c:weight"), False),
        ("delete-required-last-consigneeTelephone", delete(f"{H511}/c:consigneeTelephone"), False),
        ("delete-optional-money", delete(f"{H511}/c:freight | {H511}/c:insuredFee"), True),
        ("delete-optional-billNo", delete(f"{H511}/c:billNo"), True),
        ("billNo-38", set_text(f"{H511}/c:billNo", "b" * 38), False),
        ("goodsInfo-200", set_text(f"{H511}/c:goodsInfo", "货" * 200), True),
        ("goodsInfo-201", set_text(f"{H511}/c:goodsInfo", "货" * 201), False),
        ("packNo-10-digits", set_text(f"{H511}/c:packNo", "1234567890"), False),
        ("packNo-decimal", set_text(f"{H511}/c:packNo", "1.5"), False),
        ("weight-6-fraction-digits", set_text(f"{H511}/c:weight", "0.123456"), False),
        ("freight-not-a-number", set_text(f"{H511}/c:freight", "free"), False),
        ("currency-leading-space", set_text(f"{H511}/c:currency", " 142"), False),
        ("swap-logisticsNo-billNo", swap_with_next(f"{H511}/c:logisticsNo"), False),
        ("duplicate-head", duplicate(H511), False),
        ("extra-element", _extra(f"{H511}/c:packNo"), False),
    ],
    "CEB513": [
        *_common_declaration(D513, f"{D513}/c:logisticsCode"),
        *_hundred_documents(D513),
        ("delete-required-logisticsTime", delete(f"{D513}/c:logisticsTime"), False),
        ("delete-optional-notes", delete("c:LogisticsStatus/c:note"), True),
        ("logisticsStatus-empty", set_text(f"{D513}/c:logisticsStatus", ""), False),
        ("logisticsStatus-2", set_text(f"{D513}/c:logisticsStatus", "RS"), False),
        ("logisticsTime-15", set_text(f"{D513}/c:logisticsTime", "201503081646110"), False),
        ("logisticsNo-61", set_text(f"{D513}/c:logisticsNo", "L" * 61), False),
        ("logisticsNo-60", set_text(f"{D513}/c:logisticsNo", "L" * 60), True),
        ("swap-code-name", swap_with_next(f"{D513}/c:logisticsCode"), False),
        ("duplicate-guid", duplicate(f"{D513}/c:guid"), False),
        ("extra-element", _extra(f"{D513}/c:logisticsNo"), False),
    ],
    "CEB623": [
        *_common_declaration(D623, f"{D623}/c:orderNo"),
        *_hundred_documents(D623),
        ("delete-required-invtNo", delete(f"{D623}/c:invtNo"), False),
        ("delete-required-reason", delete(f"{D623}/c:reason"), False),
        ("delete-optional-copNo-preNo", delete(f"{D623}/c:copNo | {D623}/c:preNo"), True),
        ("empty-invtNo", set_text(f"{D623}/c:invtNo", ""), False),
        ("invtNo-19", set_text(f"{D623}/c:invtNo", "1" * 19), False),
        ("empty-optional-preNo", set_text(f"{D623}/c:preNo", ""), True),
        ("reason-1000", set_text(f"{D623}/c:reason", "因" * 1000), True),
        ("reason-1001", set_text(f"{D623}/c:reason", "因" * 1001), False),
        ("customsCode-3", set_text(f"{D623}/c:customsCode", "370"), False),
        ("swap-ebpCode-ebpName", swap_with_next(f"{D623}/c:ebpCode"), False),
        ("duplicate-guid", duplicate(f"{D623}/c:guid"), False),
        ("extra-element", _extra(f"{D623}/c:reason"), False),
    ],
    "CEB625": [
        *_common_declaration("c:InvtRefund[1]", f"{H625}/c:orderNo"),
        *_hundred_documents("c:InvtRefund[1]"),
        ("delete-required-head-reason", delete(f"{H625}/c:reason"), False),
        ("delete-required-list-gname", delete(f"{L625}/c:gname"), False),
        ("add-optional-list-note", insert_after(f"{L625}/c:unit", NOTE.format("n")), True),
        ("list-note-1001", insert_after(f"{L625}/c:unit", NOTE.format("n" * 1001)), False),
        ("delete-optional-head-copNo", delete(f"{H625}/c:copNo"), True),
        ("gcode-11", set_text(f"{L625}/c:gcode", "12345678901"), False),
        ("gname-250", set_text(f"{L625}/c:gname", "品" * 250), True),
        ("gname-251", set_text(f"{L625}/c:gname", "品" * 251), False),
        ("qty-6-fraction-digits", set_text(f"{L625}/c:qty", "1.000001"), False),
        ("unit-4", set_text(f"{L625}/c:unit", "0070"), False),
        ("swap-qty-unit", swap_with_next(f"{L625}/c:qty"), False),
        ("duplicate-head", duplicate(H625), False),
        ("99-lines", repeat_until(L625, 99), True),
        ("100-lines", repeat_until(L625, 100), False),
        ("no-lines", delete("c:InvtRefund[1]/c:InvtRefundList"), False),
        ("extra-element", _extra(f"{L625}/c:gcode"), False),
    ],
    "CEB711": [
        *_common_declaration("c:Delivery", f"{H711}/c:customsCode"),
        ("two-deliveries", duplicate("c:Delivery"), False),
        ("150-lines", repeat_until(L711, 150), True),
        ("no-lines", delete("c:Delivery/c:DeliveryList"), False),
        ("delete-required-trafNo", delete(f"{H711}/c:trafNo"), False),
        ("delete-required-list-logisticsNo", delete(f"{L711}/c:logisticsNo"), False),
        ("delete-optional-numbers", delete(f"{H711}/c:copNo | {H711}/c:rkdNo"), True),
        ("delete-optional-everywhere", delete("//c:unloadLocation | //c:note"), True),
        ("empty-trafNo", set_text(f"{H711}/c:trafNo", ""), False),
        ("voyageNo-32", set_text(f"{H711}/c:voyageNo", "v" * 32), True),
        ("voyageNo-33", set_text(f"{H711}/c:voyageNo", "v" * 33), False),
        ("billNo-38", set_text(f"{H711}/c:billNo", "b" * 38), False),
        ("rkdNo-19", set_text(f"{H711}/c:rkdNo", "1" * 19), False),
        ("list-logisticsNo-61", set_text(f"{L711}/c:logisticsNo", "L" * 61), False),
        ("gnum-not-int", set_text(f"{L711}/c:gnum", "first"), False),
        ("swap-operatorCode-operatorName", swap_with_next(f"{H711}/c:operatorCode"), False),
        ("duplicate-head", duplicate(H711), False),
        ("extra-element", _extra(f"{H711}/c:billNo"), False),
    ],
}


def _receipt(doc: str, extra: list[Case]) -> list[Case]:
    """Mutations every receipt (…Return documents with returnStatus/Time/Info) shares."""
    d = f"c:{doc}[1]"
    return [
        ("unchanged", _unchanged, True),
        ("delete-required-guid", delete(f"{d}/c:guid"), False),
        ("delete-required-last-returnInfo", delete(f"{d}/c:returnInfo"), False),
        ("returnStatus-11", set_text(f"{d}/c:returnStatus", "1" * 11), False),
        ("returnStatus-empty", set_text(f"{d}/c:returnStatus", ""), False),
        ("returnTime-16", set_text(f"{d}/c:returnTime", "2016031116143059"), False),
        ("returnInfo-1000", set_text(f"{d}/c:returnInfo", "回" * 1000), True),
        ("returnInfo-1001", set_text(f"{d}/c:returnInfo", "回" * 1001), False),
        ("swap-returnTime-returnInfo", swap_with_next(f"{d}/c:returnTime"), False),
        ("duplicate-guid", duplicate(f"{d}/c:guid"), False),
        ("100-returns", repeat_until(d, 100), True),
        ("101-returns", repeat_until(d, 101), False),
        ("no-returns", delete(f"c:{doc}"), False),
        ("extra-element", _extra(f"{d}/c:guid"), False),
        ("BaseTransfer-in-receipt", insert_after(d, '<c:BaseTransfer xmlns:c="NS"/>'), False),
        ("no-version", set_attr("version", None), False),
        *extra,
    ]


def _cancel_like(doc: str) -> list[Case]:
    d = f"c:{doc}[1]"
    return [
        ("delete-optional-codes", delete(f"{d}/c:customsCode | {d}/c:agentCode"), True),
        ("empty-optional-ebpCode", set_text(f"{d}/c:ebpCode", ""), False),
        ("preNo-17", set_text(f"{d}/c:preNo", "B2016030800000000"), False),
        ("invtNo-17", set_text(f"{d}/c:invtNo", "1" * 17), False),
        ("delete-required-copNo", delete(f"{d}/c:copNo"), False),
    ]


RECEIPT_CASES: dict[str, list[Case]] = {
    "CEB312": _receipt(
        "OrderReturn",
        [
            ("delete-required-ebcCode", delete("c:OrderReturn[1]/c:ebcCode"), False),
            ("orderNo-61", set_text("c:OrderReturn[1]/c:orderNo", "o" * 61), False),
        ],
    ),
    "CEB412": _receipt(
        "PaymentReturn",
        [
            (
                "payTransactionId-61",
                set_text("c:PaymentReturn[1]/c:payTransactionId", "p" * 61),
                False,
            ),
            ("empty-payCode", set_text("c:PaymentReturn[1]/c:payCode", ""), False),
        ],
    ),
    "CEB512": _receipt(
        "LogisticsReturn",
        [
            ("delete-required-logisticsNo", delete("c:LogisticsReturn[1]/c:logisticsNo"), False),
            ("logisticsCode-19", set_text("c:LogisticsReturn[1]/c:logisticsCode", "1" * 19), False),
        ],
    ),
    "CEB514": _receipt(
        "LogisticsStatusReturn",
        [
            (
                "logisticsStatus-2",
                set_text("c:LogisticsStatusReturn[1]/c:logisticsStatus", "RS"),
                False,
            ),
            (
                "delete-required-logisticsStatus",
                delete("c:LogisticsStatusReturn[1]/c:logisticsStatus"),
                False,
            ),
        ],
    ),
    "CEB624": _receipt("InvtCancelReturn", _cancel_like("InvtCancelReturn")),
    "CEB626": _receipt("InvtRefundReturn", _cancel_like("InvtRefundReturn")),
    "CEB712": _receipt(
        "DeliveryReturn",
        [
            (
                "delete-optional-numbers",
                delete("c:DeliveryReturn[1]/c:copNo | c:DeliveryReturn[1]/c:rkdNo"),
                True,
            ),
            ("empty-optional-preNo", set_text("c:DeliveryReturn[1]/c:preNo", ""), True),
            (
                "empty-optional-operatorCode",
                set_text("c:DeliveryReturn[1]/c:operatorCode", ""),
                False,
            ),
            ("rkdNo-19", set_text("c:DeliveryReturn[1]/c:rkdNo", "1" * 19), False),
        ],
    ),
}

# No official CEB816/CEB818 samples: mutate our own corpus documents instead.
T816 = "c:Tax[1]/c:TaxHeadRd"
TL816 = "c:Tax[1]/c:TaxListRd[1]"
T818 = "c:Tax[1]/c:TaxHeadStatus"
TAX_CASES: dict[str, list[Case]] = {
    "CEB816": [
        ("unchanged", _unchanged, True),
        ("150-documents", repeat_until("c:Tax[1]", 150), True),
        ("no-documents", delete("c:Tax"), False),
        ("99-lines", repeat_until(TL816, 99), True),
        ("100-lines", repeat_until(TL816, 100), False),
        ("no-lines", delete("c:Tax[1]/c:TaxListRd"), False),
        ("delete-required-taxNo", delete(f"{T816}/c:taxNo"), False),
        (
            "delete-optional-tail",
            delete(
                f"{T816}/c:assureCode | {T816}/c:ebcCode | {T816}/c:logisticsCode"
                f" | {T816}/c:agentCode | {T816}/c:customsCode"
            ),
            True,
        ),
        ("assureCode-64", set_text(f"{T816}/c:assureCode", "a" * 64), True),
        ("assureCode-65", set_text(f"{T816}/c:assureCode", "a" * 65), False),
        ("empty-optional-agentCode", set_text(f"{T816}/c:agentCode", ""), False),
        ("empty-optional-ebcCode", set_text(f"{T816}/c:ebcCode", ""), True),
        ("taxNo-51", set_text(f"{T816}/c:taxNo", "t" * 51), False),
        ("status-2-chars", set_text(f"{T816}/c:status", "12"), False),
        ("customsTax-6-fraction-digits", set_text(f"{T816}/c:customsTax", "0.000001"), False),
        ("line-taxPrice-not-a-number", set_text(f"{TL816}/c:taxPrice", "n/a"), False),
        ("line-gcode-9", set_text(f"{TL816}/c:gcode", "190110100"), False),
        ("swap-customsTax-valueAddedTax", swap_with_next(f"{TL816}/c:customsTax"), False),
        ("duplicate-head", duplicate(T816), False),
        ("extra-element", _extra(f"{T816}/c:status"), False),
        (
            "BaseTransfer-in-tax-bill",
            insert_after("c:Tax[1]", '<c:BaseTransfer xmlns:c="NS"/>'),
            False,
        ),
    ],
    "CEB818": [
        ("unchanged", _unchanged, True),
        ("150-documents", repeat_until("c:Tax[1]", 150), True),
        ("delete-required-status", delete(f"{T818}/c:status"), False),
        ("delete-optional-tail", delete(f"{T818}/c:entDutyNo | {T818}/c:assureCode"), True),
        ("assureCode-65", set_text(f"{T818}/c:assureCode", "a" * 65), False),
        ("invtNo-empty", set_text(f"{T818}/c:invtNo", ""), False),
        ("returnTime-14", set_text(f"{T818}/c:returnTime", "20261210090000"), False),
        ("duplicate-head", duplicate(T818), False),
        ("line-in-status", insert_after(T818, '<c:TaxListRd xmlns:c="NS"/>'), False),
    ],
}


# ------------------------------------------------------------------------- helpers


def _verdicts(root: etree._Element, message_type: str) -> tuple[bool, bool]:
    """(ours, official) on the same tree."""
    return schema_for(get_spec(message_type)).validate(root), _official_schema().validate(root)


def _agree(root: etree._Element, message_type: str, expected: bool) -> None:
    ours, official = _verdicts(root, message_type)
    assert ours == official, f"ours={ours} official={official}: {_official_schema().error_log}"
    assert ours == expected


def _params(table: dict[str, list[Case]]) -> list[pytest.param]:
    return [pytest.param(t, m, e, id=f"{t}-{i}") for t, cases in table.items() for i, m, e in cases]


def _import_samples() -> list[str]:
    """Import message types that have an official sample (names only, for test ids)."""
    ours = {s.type for s in all_specs()}
    return [t for t in sorted(ours) if t in DECLARATIONS + RECEIPTS + ["CEB621", "CEB622"]]


# ------------------------------------------------------------------------- samples


@pytest.mark.parametrize("message_type", _import_samples())
def test_official_import_sample_validates_against_ours_and_officially(message_type: str) -> None:
    root = _load(SAMPLES / f"{message_type}Message.xml")
    schema = schema_for(get_spec(message_type))
    assert schema.validate(root), schema.error_log
    assert _official_schema().validate(root)


def test_every_import_type_is_covered_here() -> None:
    covered = set(DECLARATION_CASES) | set(RECEIPT_CASES) | set(TAX_CASES)
    assert covered == set(DECLARATIONS + RECEIPTS + ["CEB816", "CEB818"])


@pytest.mark.parametrize(("message_type", "mutate", "expected"), _params(DECLARATION_CASES))
def test_import_declaration_agrees_with_official(
    message_type: str, mutate: Mutation, expected: bool
) -> None:
    """Declaration samples keep their ds:Signature (required officially for some)."""
    root = _load(SAMPLES / f"{message_type}Message.xml")
    mutate(root)
    _agree(root, message_type, expected)


@pytest.mark.parametrize(("message_type", "mutate", "expected"), _params(RECEIPT_CASES))
def test_import_receipt_agrees_with_official(
    message_type: str, mutate: Mutation, expected: bool
) -> None:
    root = _load(SAMPLES / f"{message_type}Message.xml")
    mutate(root)
    _agree(root, message_type, expected)


@pytest.mark.parametrize(("message_type", "mutate", "expected"), _params(TAX_CASES))
def test_tax_bill_agrees_with_official(message_type: str, mutate: Mutation, expected: bool) -> None:
    _official_schema()  # skip when ../shared is absent
    root = etree.fromstring((CORPUS / message_type / "valid.xml").read_bytes())
    mutate(root)
    _agree(root, message_type, expected)


# ------------------------------------------------------ the deliberate difference


@pytest.mark.parametrize("message_type", DECLARATIONS)
def test_unsigned_declaration_is_valid_for_us(message_type: str) -> None:
    """Ours accepts every unsigned declaration; officially only CEB311/411/511/513 do."""
    root = _load(SAMPLES / f"{message_type}Message.xml")
    signature = root.find("ds:Signature", NS)
    assert signature is not None
    root.remove(signature)
    ours, official = _verdicts(root, message_type)
    assert ours
    assert official == (message_type in OFFICIALLY_OPTIONAL_SIGNATURE)


@pytest.mark.parametrize("message_type", DECLARATIONS)
def test_signature_must_be_last(message_type: str) -> None:
    root = _load(SAMPLES / f"{message_type}Message.xml")
    signature = root.find("ds:Signature", NS)
    root.remove(signature)
    root.insert(0, signature)
    assert _verdicts(root, message_type) == (False, False)


@pytest.mark.parametrize("message_type", RECEIPTS)
def test_signed_receipt_is_valid_for_us_but_not_officially(message_type: str) -> None:
    root = _load(SAMPLES / f"{message_type}Message.xml")
    etree.SubElement(root, f"{{{DS_NS}}}Signature")
    assert _verdicts(root, message_type) == (True, False)


@pytest.mark.parametrize("message_type", ["CEB816", "CEB818"])
def test_signed_tax_message_is_valid_for_us_but_not_officially(message_type: str) -> None:
    _official_schema()
    root = etree.fromstring((CORPUS / message_type / "valid.xml").read_bytes())
    etree.SubElement(root, f"{{{DS_NS}}}Signature")
    assert _verdicts(root, message_type) == (True, False)
