"""三单对碰 before sending: the gateway compares a list with the order, payment and waybill it
already holds, in either order of arrival, and names the field at fault."""

from __future__ import annotations

import pytest

from gateway.domain.errors import BusinessRuleViolation
from gateway.examples import fresh_parcel
from gateway.services.declare import declare
from gateway.services.runtime import Runtime

XML = "application/xml"


def test_a_consistent_parcel_is_accepted_in_any_order(runtime: Runtime, org_id: str):
    for order in (
        ("CEB311", "CEB411", "CEB511", "CEB621"),
        ("CEB621", "CEB511", "CEB411", "CEB311"),
    ):
        parcel = fresh_parcel()
        for message_type in order:
            assert declare(runtime, org_id, parcel[message_type], XML).declarations


def test_a_list_that_disagrees_with_the_order_is_refused_field_by_field(
    runtime: Runtime, org_id: str
):
    parcel = fresh_parcel()
    declare(runtime, org_id, parcel["CEB311"], XML)
    wrong = parcel["CEB621"].replace("张三".encode(), "李四".encode())
    with pytest.raises(BusinessRuleViolation) as err:
        declare(runtime, org_id, wrong, XML)
    (problem,) = err.value.violations
    assert problem.code == "rule.match.order"
    assert problem.path == "/CEB621Message/Inventory[1]/InventoryHead/buyerName"
    assert problem.message_zh == "订购人姓名与订单不符"


def test_a_payment_that_disagrees_with_a_declared_list_is_refused(runtime: Runtime, org_id: str):
    parcel = fresh_parcel()
    declare(runtime, org_id, parcel["CEB311"], XML)
    declare(runtime, org_id, parcel["CEB621"], XML)
    wrong = parcel["CEB411"].replace(
        b"<ceb:amountPaid>552.96</ceb:amountPaid>", b"<ceb:amountPaid>500.00</ceb:amountPaid>"
    )
    with pytest.raises(BusinessRuleViolation) as err:
        declare(runtime, org_id, wrong, XML)
    (problem,) = err.value.violations
    assert problem.code == "rule.match.payment" and "500.00" in problem.message
    assert problem.path == "/CEB411Message/Payment[1]"
