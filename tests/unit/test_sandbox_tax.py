"""Cross-border retail import tax and the CEB816 bill: the numbers add up and validate."""

from __future__ import annotations

from decimal import Decimal

from gateway.xml.validation import schema_violations
from sandbox.receipts import tax_bill_message
from sandbox.tax import line_tax, tax_bill
from schemas.registry import get_spec


def test_vat_only_goods_pay_9_1_percent():
    line = line_tax(1, "1901101000", Decimal("396.00"))
    assert line.customs_tax == Decimal("0.00")
    assert line.value_added_tax == Decimal("36.04")  # 396 x 13 % x 70 %
    assert line.consumption_tax == Decimal("0.00")


def test_consumption_taxed_goods_use_the_composite_base():
    line = line_tax(1, "3303000010", Decimal("850.00"))
    base = Decimal("850.00") / Decimal("0.85")  # 1000.00
    assert line.consumption_tax == (base * Decimal("0.15") * Decimal("0.7")).quantize(
        Decimal("0.01")
    )
    assert line.value_added_tax == Decimal("91.00")  # 1000 x 13 % x 70 %
    assert line.consumption_tax == Decimal("105.00")


def test_the_head_is_the_sum_of_the_lines_and_the_bill_validates():
    lines = [
        {"gnum": "1", "gcode": "1901101000", "totalPrice": "396.00"},
        {"gnum": "2", "gcode": "3304990099", "totalPrice": "120.00"},
        {"gnum": "3", "gcode": "3303000010", "totalPrice": "333.33"},
    ]
    bill = tax_bill("46012026I000012345", lines)
    assert bill.tax_no == "46012026I00001234501"
    assert bill.value_added_tax == sum(line.value_added_tax for line in bill.lines)
    assert bill.consumption_tax == sum(line.consumption_tax for line in bill.lines)
    assert bill.total == bill.customs_tax + bill.value_added_tax + bill.consumption_tax
    head = {"agentCode": "1105910159", "customsCode": "4601", "ebcCode": "1101110325"}
    root = tax_bill_message(bill, head, "20261123113015200")
    assert schema_violations(root, get_spec("CEB816")) == []
