"""Business rules on plain documents: each rule fires on its case and only there."""

from __future__ import annotations

import pytest

from gateway.domain.rules import DocumentView, check_document, id_card_problem, mask_id

GOOD_ID = "11010519491231002X"


def _codes(doc: DocumentView) -> list[str]:
    return [v.code for v in check_document(doc)]


def _order(**head: str) -> DocumentView:
    base = {
        "appType": "1",
        "appStatus": "2",
        "appTime": "20261123101500",
        "goodsValue": "516.00",
        "freight": "10.00",
        "taxTotal": "46.96",
        "discount": "20.00",
        "acturalPaid": "552.96",
        "currency": "142",
        "buyerIdType": "1",
        "buyerIdNumber": GOOD_ID,
    }
    lines = [
        {"qty": "2", "price": "198.00", "totalPrice": "396.00", "currency": "142"},
        {"qty": "1", "price": "120.00", "totalPrice": "120.00", "currency": "142"},
    ]
    return DocumentView("CEB311", {**base, **head}, lines)


def test_a_consistent_order_breaks_no_rule():
    assert _codes(_order()) == []


@pytest.mark.parametrize(
    ("number", "problem"),
    [
        (GOOD_ID, None),
        ("110105194912310021", "check digit 1"),
        ("11010519491331002X", "impossible birth date"),
        ("1101051949123100", "18 characters"),
        ("11010519491231002x", None),  # a lower-case x is the same check digit
    ],
)
def test_id_card_numbers(number: str, problem: str | None):
    found = id_card_problem(number)
    assert (found is None) if problem is None else (problem in (found or ""))


@pytest.mark.parametrize(
    ("head", "code"),
    [
        ({"buyerIdNumber": "110105194912310021"}, "idcard.check_digit"),
        ({"acturalPaid": "600.00"}, "amount.actural_paid"),
        ({"goodsValue": "500.00", "acturalPaid": "536.96"}, "amount.goods_value"),
        ({"currency": "502"}, "currency.cny"),
        ({"appType": "9"}, "head.app_type"),
        ({"appStatus": "3"}, "head.app_status"),
        ({"appTime": "20261131101500"}, "date.invalid"),
    ],
)
def test_each_rule_fires_on_its_case(head: dict[str, str], code: str):
    assert _codes(_order(**head)) == [code]


def test_line_totals_allow_five_percent_and_no_more():
    doc = _order()
    doc.lines[0]["totalPrice"] = "410.00"  # 3.5 % off
    assert _codes(doc) == ["amount.goods_value"]
    doc.lines[0]["totalPrice"] = "430.00"  # 8.6 % off
    assert "amount.line_total" in _codes(doc)


def test_over_five_thousand_is_refused_unless_one_indivisible_item():
    lines = [{"qty": "3", "price": "2000", "totalPrice": "6000"}]
    assert _codes(DocumentView("CEB621", {}, lines)) == ["limit.single_transaction"]
    single = [{"qty": "1", "price": "6000", "totalPrice": "6000"}]
    assert _codes(DocumentView("CEB621", {}, single)) == []


def test_bonded_inventories_need_an_account_book_and_area():
    codes = _codes(DocumentView("CEB621", {"tradeMode": "1210"}, []))
    assert codes == ["bonded.required", "bonded.required"]
    assert (
        _codes(DocumentView("CEB621", {"tradeMode": "1210", "emsNo": "T1", "areaCode": "A1"}, []))
        == []
    )


@pytest.mark.parametrize("junk", ["NaN", "Infinity", "-inf", "sNaN", "1.2.3", ""])
def test_numbers_that_are_not_amounts_never_crash_a_rule(junk: str):
    doc = _order(goodsValue=junk, acturalPaid=junk)
    doc.lines[0].update(qty=junk, price=junk, totalPrice=junk)
    check_document(doc)  # must not raise


def test_personal_data_is_masked_in_reports():
    assert mask_id(GOOD_ID) == "110105********002X"
    assert GOOD_ID not in str(
        [v.value for v in check_document(_order(buyerIdNumber="110105194912310021"))]
    )
