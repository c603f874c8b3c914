"""Cross-border retail import tax: our estimate adds up, follows the public rule, meets the bill."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from gateway.domain.rules import DocumentView
from gateway.domain.tax import (
    LineTax,
    TaxAssessment,
    TaxMode,
    TaxRate,
    TaxRates,
    apportion,
    assess,
    choose_mode,
    differences,
    from_tax_bill,
    line_tax,
    money,
)
from gateway.xml.documents import document_elements
from gateway.xml.parsing import parse_xml
from schemas import get_spec

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = ROOT / "tests" / "data" / "messages"
TABLE = ROOT / "config" / "tax_rates.toml"
D = Decimal


@pytest.fixture(scope="module")
def rates() -> TaxRates:
    return TaxRates.load(TABLE)


def _doc(*lines: tuple[str, str], freight: str = "0", insured: str = "0", qty: str = "1"):
    return DocumentView(
        "CEB621",
        {"freight": freight, "insuredFee": insured},
        [
            {"gnum": str(i), "gcode": gcode, "totalPrice": total, "qty": qty}
            for i, (gcode, total) in enumerate(lines, start=1)
        ],
    )


def _view(message_type: str):
    root = parse_xml((MESSAGES / message_type / "valid.xml").read_bytes())
    return document_elements(root, get_spec(message_type))[0].view


def _tax_bill_fields() -> tuple[dict[str, str], list[dict[str, str]]]:
    root = parse_xml((MESSAGES / "CEB816" / "valid.xml").read_bytes())

    def fields(el: etree._Element) -> dict[str, str]:
        return {etree.QName(c).localname: (c.text or "").strip() for c in el}

    head = root.find(".//{*}TaxHeadRd")
    assert head is not None
    return fields(head), [fields(x) for x in root.iterfind(".//{*}TaxListRd")]


# --- Worked examples, checked by hand -----------------------------------------------------


def test_infant_formula_at_9_percent_vat_pays_24_95():
    # A table where 1901 takes 9 % VAT. VAT = 396.00 x 9 % x 70 % = 24.948 -> 24.95;
    # no consumption tax, no tariff: 24.95 in all.
    nine = TaxRates.from_mapping({"rate": [{"prefix": "1901", "vat": "0.09", "name": "9 %"}]})
    a = assess(_doc(("1901101000", "396.00")), nine)
    assert [(x.customs_tax, x.vat, x.consumption_tax) for x in a.lines] == [
        (D("0.00"), D("24.95"), D("0.00"))
    ]
    assert a.total == D("24.95")


def test_infant_formula_in_the_shipped_table_pays_13_percent_vat_like_the_sample_bill(rates):
    # 396.00 x 13 % x 70 % = 36.036 -> 36.04: the line of tests/data/messages/CEB816.
    assert rates.rate_for("1901101000").vat == D("0.13")
    assert assess(_doc(("1901101000", "396.00")), rates).vat == D("36.04")


def test_high_end_cosmetics_pay_consumption_tax_on_the_composite_base():
    # 120.00 of high-end cosmetics, VAT 13 %, CT 15 %:
    #   组成计税价格 = 120 / (1 - 0.15) = 141.17647...; statutory CT = x 15 % = 21.17647...
    #   CT levied  = 21.17647 x 70 % = 14.8235 -> 14.82
    #   VAT levied = (120 + 21.17647) x 13 % x 70 % = 12.8470 -> 12.85
    #   total 27.67 (= 120 x (0.15 + 0.13) / 0.85 x 0.7 = 27.6706, rounded per tax)
    high_end = TaxRates.from_mapping(
        {"rate": [{"prefix": "3304", "consumption": "0.15", "name": "high-end"}]}
    )
    a = assess(_doc(("3304990099", "120.00")), high_end)
    assert (a.consumption_tax, a.vat, a.customs_tax, a.total) == (
        D("14.82"),
        D("12.85"),
        D("0.00"),
        D("27.67"),
    )


def test_perfume_pays_15_percent_consumption_tax(rates):
    # 850.00 / 0.85 = 1000.00; CT = 1000 x 15 % x 70 % = 105.00; VAT = 1000 x 13 % x 70 % = 91.00
    a = assess(_doc(("3303000010", "850.00")), rates)
    assert (a.consumption_tax, a.vat, a.total) == (D("105.00"), D("91.00"), D("196.00"))


def test_a_watch_over_the_single_limit_is_taxed_in_full_as_general_trade(rates):
    # One 6,000.00 watch (9102, CT 20 %), general mode, tariff 0 as shipped:
    #   statutory CT = 6000 / 0.8 x 0.2 = 1500.00 (all of it); VAT = (6000 + 1500) x 13 % = 975.00
    doc = _doc(("9102110000", "6000.00"))
    assert choose_mode(doc, D("6000.00")) == TaxMode.GENERAL
    a = assess(doc, rates, TaxMode.GENERAL)
    assert (a.customs_tax, a.consumption_tax, a.vat, a.total) == (
        D("0.00"),
        D("1500.00"),
        D("975.00"),
        D("2475.00"),
    )
    # The same watch in retail mode would pay 70 %: 1050.00 + 682.50.
    assert assess(doc, rates).total == D("1732.50")


def test_a_configured_general_tariff_enters_the_consumption_and_vat_bases():
    # Tariff 10 %: 600.00; CT = (6000 + 600) / 0.8 x 0.2 = 1650.00;
    # VAT = (6000 + 600 + 1650) x 13 % = 1072.50; total 3322.50.
    table = TaxRates.from_mapping(
        {"rate": [{"prefix": "9102", "consumption": "0.2", "tariff": "0.10"}]}
    )
    a = assess(_doc(("9102110000", "6000.00")), table, TaxMode.GENERAL)
    assert (a.customs_tax, a.consumption_tax, a.vat, a.total) == (
        D("600.00"),
        D("1650.00"),
        D("1072.50"),
        D("3322.50"),
    )
    assert a.mode == TaxMode.GENERAL


def test_retail_imports_pay_no_tariff_whatever_the_table_says():
    table = TaxRates.from_mapping({"rate": [{"prefix": "9102", "tariff": "0.10"}]})
    assert assess(_doc(("9102110000", "1000.00")), table).customs_tax == D("0.00")


def test_freight_and_insurance_are_apportioned_by_value_into_the_dutiable_value(rates):
    # The CEB621 sample: 396.00 + 120.00 of goods, freight 10.00.
    #   exact shares 7.6744 and 2.3255 -> 7.67 + 2.32 = 9.99; the cent left goes to the larger
    #   remainder (line 2): 7.67 + 2.33. Dutiable 403.67 and 122.33.
    #   VAT: 403.67 x 9.1 % = 36.734 -> 36.73; 122.33 x 9.1 % = 11.132 -> 11.13; total 47.86.
    a = assess(_view("CEB621"), rates)
    assert [x.tax_price for x in a.lines] == [D("403.67"), D("122.33")]
    assert [x.vat for x in a.lines] == [D("36.73"), D("11.13")]
    assert a.total == D("47.86")
    assert a.dutiable_value == D("526.00")


def test_insured_fee_counts_like_freight(rates):
    a = assess(_doc(("1901101000", "100.00"), freight="3.00", insured="2.00"), rates)
    assert a.lines[0].tax_price == D("105.00")


# --- The rate table -----------------------------------------------------------------------


def test_the_longest_prefix_wins_and_unknown_codes_use_the_default():
    table = TaxRates.from_mapping(
        {
            "default": {"vat": "0.13", "name": "std"},
            "rate": [
                {"prefix": "33", "vat": "0.11", "name": "chapter 33"},
                {"prefix": "3304", "consumption": "0.15", "name": "cosmetics"},
                {"prefix": "3304990099", "consumption": "0", "name": "one code"},
            ],
        }
    )
    assert table.rate_for("3301000000").name == "chapter 33"
    assert table.rate_for("3304100000").name == "cosmetics"
    assert table.rate_for("3304990099").name == "one code"
    assert table.rate_for("8518300000") == TaxRate(D("0.13"), D("0"), "std")


def test_a_row_inherits_the_rates_it_does_not_name_from_the_default():
    table = TaxRates.from_mapping(
        {
            "default": {"vat": "0.13", "tariff": "0.05"},
            "rate": [{"prefix": "2208", "consumption": 0.2}],
        }
    )
    row = table.rate_for("2208300000")
    assert (row.vat, row.consumption, row.tariff, row.prefix) == (
        D("0.13"),
        D("0.2"),
        D("0.05"),
        "2208",
    )


def test_the_shipped_table_loads_says_it_is_illustrative_and_has_the_expected_rows(rates):
    assert "ILLUSTRATIVE" in TABLE.read_text(encoding="utf-8")
    assert rates.default.vat == D("0.13") and rates.default.consumption == 0
    assert rates.rate_for("3303000010").consumption == D("0.15")
    assert rates.rate_for("9102110000").consumption == D("0.20")
    assert rates.rate_for("0401100000").vat == D("0.09")
    assert rates.rate_for("3304990099").consumption == 0  # ordinary cosmetics, as billed
    assert all(r.tariff == 0 for r in rates.by_prefix.values())


@pytest.mark.parametrize(
    "data",
    [
        {"rate": [{"prefix": "3304"}, {"prefix": "3304"}]},  # twice
        {"rate": [{"prefix": "33a4"}]},
        {"rate": [{"prefix": "12345678901"}]},
        {"rate": [{"prefix": "3303", "consumption": "1"}]},  # 1 - c would divide by zero
        {"rate": [{"prefix": "3303", "vat": "-0.1"}]},
        {"rate": [{"prefix": "3303", "vat": "thirteen"}]},
        {"rate": [{"prefix": "3303", "vta": "0.13"}]},  # a typo is not silently ignored
        {"rates": []},
    ],
)
def test_a_broken_rate_table_is_refused_at_load(data):
    with pytest.raises(ValueError):
        TaxRates.from_mapping(data)


# --- Modes, bills, comparison -------------------------------------------------------------


def test_only_a_single_indivisible_item_over_5000_goes_general():
    one = _doc(("9102110000", "5200.00"))
    assert choose_mode(one, D("5200.00")) == TaxMode.GENERAL
    assert choose_mode(one, D("5000.00")) == TaxMode.RETAIL  # at the limit is within it
    assert choose_mode(_doc(("9102110000", "5200.00"), qty="2"), D("5200")) == TaxMode.RETAIL
    two = _doc(("9102110000", "2600.00"), ("9102110000", "2600.00"))
    assert choose_mode(two, D("5200.00")) == TaxMode.RETAIL  # the rules refuse it instead
    small = _doc(("1901101000", "100.00"))
    assert choose_mode(small, D("100"), exceeds_annual_quota=True) == TaxMode.GENERAL


def test_the_sample_tax_bill_reads_into_the_same_shape():
    head, lines = _tax_bill_fields()
    bill = from_tax_bill(head, lines)
    assert (bill.customs_tax, bill.vat, bill.consumption_tax, bill.total) == (
        D("0.00"),
        D("46.96"),
        D("0.00"),
        D("46.96"),
    )
    assert [(x.gnum, x.gcode, x.tax_price, x.vat) for x in bill.lines] == [
        (1, "1901101000", D("396.00"), D("36.04")),
        (2, "3304990099", D("120.00"), D("10.92")),
    ]
    assert bill.mode == TaxMode.RETAIL
    assert from_tax_bill(head).lines == ()  # the head alone is enough


def test_our_estimate_matches_the_sample_bill_when_the_list_has_no_freight(rates):
    head, lines = _tax_bill_fields()
    doc = _view("CEB621")
    no_freight = DocumentView(doc.message_type, {**doc.head, "freight": "0"}, doc.lines)
    assert differences(assess(no_freight, rates), from_tax_bill(head, lines)) == []


def test_differences_name_the_field_and_line_that_disagree(rates):
    # With its 10.00 freight the sample list is dutiable at 403.67 + 122.33; the sample bill
    # (like our sandbox) taxes the goods price only, so the two disagree, visibly.
    head, lines = _tax_bill_fields()
    found = differences(assess(_view("CEB621"), rates), from_tax_bill(head, lines))
    assert {(d.field, d.gnum) for d in found} == {
        ("vat", None),
        ("total", None),
        ("tax_price", 1),
        ("vat", 1),
        ("tax_price", 2),
        ("vat", 2),
    }
    vat_head = next(d for d in found if d.field == "vat" and d.gnum is None)
    assert (vat_head.estimated, vat_head.billed) == (D("47.86"), D("46.96"))


def test_a_cent_of_rounding_is_not_a_difference_and_missing_lines_are():
    ours = TaxAssessment.of_lines([LineTax(1, "1901101000", D("10"), D(0), D("0.91"), D(0))])
    theirs = TaxAssessment.of_lines(
        [
            LineTax(1, "1901101000", D("10"), D(0), D("0.92"), D(0)),
            LineTax(2, "1901101000", D("10"), D(0), D("0.91"), D(0)),
        ]
    )
    found = differences(ours, theirs)
    assert [(d.field, d.gnum) for d in found] == [("vat", None), ("total", None), ("line", 2)]


def test_a_list_with_a_missing_or_bad_price_is_refused_not_guessed(rates):
    with pytest.raises(ValueError):
        assess(DocumentView("CEB621", {}, [{"gcode": "1901101000"}]), rates)
    with pytest.raises(ValueError):
        assess(_doc(("1901101000", "NaN")), rates)


def test_an_assessment_survives_a_json_round_trip_exactly(rates):
    a = assess(_view("CEB621"), rates)
    stored = json.loads(json.dumps(a.as_dict()))
    assert stored["vat"] == "47.86" and stored["lines"][0]["tax_price"] == "403.67"
    assert TaxAssessment.from_dict(stored) == a
    head, lines = _tax_bill_fields()
    bill = from_tax_bill(head, lines)
    assert TaxAssessment.from_dict(json.loads(json.dumps(bill.as_dict()))) == bill


# --- Properties ---------------------------------------------------------------------------


def test_apportioned_shares_add_up_exactly_are_never_negative_and_within_a_cent():
    rnd = random.Random(816)
    for _ in range(500):
        weights = [D(rnd.randint(0, 500_000)) / 100 for _ in range(rnd.randint(1, 8))]
        total = D(rnd.randint(0, 20_000)) / 100
        shares = apportion(total, weights)
        assert sum(shares, D(0)) == total
        assert all(s >= 0 for s in shares)
        if sum(weights) > 0:
            for s, w in zip(shares, weights, strict=True):
                assert abs(s - total * w / sum(weights)) < D("0.01")


def test_the_head_is_always_the_sum_of_the_rounded_lines(rates):
    rnd = random.Random(621)
    codes = ["1901101000", "3304990099", "3303000010", "9102110000", "0401100000", "8518300000"]
    for _ in range(200):
        lines = [
            (rnd.choice(codes), f"{D(rnd.randint(1, 300_000)) / 100:.2f}")
            for _ in range(rnd.randint(1, 6))
        ]
        doc = _doc(*lines, freight=f"{D(rnd.randint(0, 5000)) / 100:.2f}")
        for mode in TaxMode:
            a = assess(doc, rates, mode)
            assert a.vat == sum((x.vat for x in a.lines), D(0))
            assert a.consumption_tax == sum((x.consumption_tax for x in a.lines), D(0))
            assert a.total == a.customs_tax + a.vat + a.consumption_tax
            assert all(x.total == money(x.total) for x in a.lines)  # whole cents


def test_goods_without_consumption_tax_pay_the_9_1_percent_comprehensive_rate():
    rate = TaxRate(D("0.13"), D(0), "std")
    rnd = random.Random(91)
    for _ in range(300):
        value = D(rnd.randint(1, 500_000)) / 100
        line = line_tax(1, "8518300000", value, rate)
        assert line.vat == money(value * D("0.091"))
        assert line.consumption_tax == 0 and line.customs_tax == 0
