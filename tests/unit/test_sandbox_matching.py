"""Three-document match in the sandbox customs: present, strict and off modes, and reasons
that name the fields in Chinese and English."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from sandbox.matching import Document, Partners, check, mismatch_reason
from tests.sandbox.harness import Family, World, family, sign, start_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = start_world(tmp_path_factory.mktemp("matching"))
    yield w
    w.stop()


@pytest.fixture(autouse=True)
def _reset(world: World) -> None:
    assert world.admin("reset", {}).status_code == 200


def _partners(world: World, fam: Family, *which: str) -> None:
    types = {"order": "CEB311", "payment": "CEB411", "waybill": "CEB511"}
    for name in which:
        world.post("customs", sign(getattr(fam, name), world.declarant), types[name])
    deadline = time.monotonic() + 5
    wanted = {fam.head(n).findtext("{http://www.chinaport.gov.cn/ceb}guid") for n in which}
    while time.monotonic() < deadline:
        documents = world.records()["customs"]["documents"]
        if all(documents.get(g, [])[-1:] == ["120"] for g in wanted):
            return
        time.sleep(0.02)
    raise AssertionError("partners were not accepted")


def _reason(world: World, fam: Family) -> str:
    codes = world.receiver.wait_codes(fam.inventory_guid, 2)
    assert codes == ["2", "100"], codes
    return world.receiver.for_doc(fam.inventory_guid)[1].entries()[0]["returnInfo"]


def test_present_mode_with_all_three_consistent_releases(world: World):
    fam = family()
    _partners(world, fam, "order", "payment", "waybill")
    world.post("customs", sign(fam.inventory, world.declarant), "CEB621")
    assert world.receiver.wait_codes(fam.inventory_guid, 3) == ["2", "120", "800"]


def test_present_mode_payment_amount_mismatch_names_both_amounts(world: World):
    fam = family().change("payment", amountPaid="500.00")
    _partners(world, fam, "order", "payment")
    world.post("customs", sign(fam.inventory, world.declarant), "CEB621")
    reason = _reason(world, fam)
    assert reason == (
        "三单信息不一致：支付金额与订单实付金额不符 / "
        "payment amountPaid 500.00 does not match order acturalPaid 552.96"
    )


def test_present_mode_waybill_for_another_order_is_rejected(world: World):
    fam = family().change("waybill", orderNo="ORDSOMETHINGELSE")
    _partners(world, fam, "waybill")
    world.post("customs", sign(fam.inventory, world.declarant), "CEB621")
    reason = _reason(world, fam)
    assert "运单订单编号与清单不符" in reason
    assert "waybill orderNo ORDSOMETHINGELSE does not match inventory orderNo" in reason


def test_present_mode_buyer_mismatch_with_the_order(world: World):
    fam = family().change("order", buyerName="李四")
    _partners(world, fam, "order")
    world.post("customs", sign(fam.inventory, world.declarant), "CEB621")
    reason = _reason(world, fam)
    assert "订购人姓名与订单不符" in reason and "order buyerName 李*" in reason
    assert "李四" not in reason  # personal data: the name is masked


def test_off_mode_ignores_a_mismatch(world: World):
    world.admin("risk", {"match_mode": "off"})
    fam = family().change("payment", amountPaid="1.00")
    _partners(world, fam, "order", "payment")
    world.post("customs", sign(fam.inventory, world.declarant), "CEB621")
    assert world.receiver.wait_codes(fam.inventory_guid, 3) == ["2", "120", "800"]


def test_strict_mode_waits_for_partners_that_arrive_later(world: World):
    world.admin("risk", {"match_mode": "strict", "match_timeout": 10})
    fam = family()
    world.post("customs", sign(fam.inventory, world.declarant), "CEB621")
    assert world.receiver.wait_codes(fam.inventory_guid, 1) == ["2"]
    assert world.records()["customs"]["waiting_for_partners"] >= 1
    time.sleep(0.2)
    assert world.receiver.codes(fam.inventory_guid) == ["2"]
    _partners(world, fam, "waybill", "payment", "order")  # any order
    assert world.receiver.wait_codes(fam.inventory_guid, 3) == ["2", "120", "800"]


def test_strict_mode_with_partners_already_in_does_not_wait(world: World):
    world.admin("risk", {"match_mode": "strict", "match_timeout": 10})
    fam = family()
    _partners(world, fam, "order", "payment", "waybill")
    world.post("customs", sign(fam.inventory, world.declarant), "CEB621")
    assert world.receiver.wait_codes(fam.inventory_guid, 3) == ["2", "120", "800"]


def test_strict_mode_times_out_naming_what_is_missing(world: World):
    world.admin("risk", {"match_mode": "strict", "match_timeout": 0.3})
    fam = family()
    _partners(world, fam, "order")
    world.post("customs", sign(fam.inventory, world.declarant), "CEB621")
    reason = _reason(world, fam)
    assert reason.startswith("三单不齐：缺少支付单、运单 / order, payment or waybill missing: ")
    assert "payment" in reason and "waybill" in reason and "order 1101110325" not in reason


def test_check_compares_goods_totals_and_ids():
    inventory = Document(
        "CEB621",
        {"orderNo": "O1", "buyerIdNumber": "11010519491231002X", "buyerName": "张三"},
        [{"totalPrice": "396.00"}, {"totalPrice": "120.00"}],
    )
    order = Document(
        "CEB311",
        {"goodsValue": "600.00", "buyerIdNumber": "440106198507150035", "acturalPaid": "9"},
    )
    payment = Document("CEB411", {"amountPaid": "9", "payerIdNumber": "11010519491231002X"})
    problems = check(inventory, Partners(order=order, payment=payment))
    reason = mismatch_reason(problems)
    assert [p.zh for p in problems] == [
        "清单商品总价与订单商品货值不符",
        "订购人证件号码与订单不符",
    ]
    assert "inventory goods total 516.00 does not match order goodsValue 600.00" in reason
    assert check(inventory, Partners()) == []
