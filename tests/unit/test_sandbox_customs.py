"""Sandbox customs over real HTTP: dedupe, verification, format and logic errors, numbers,
the tax bill, channel selection, and receipts that validate against our schemas."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from lxml import etree

from sandbox.risk import Risk
from schemas.registry import CEB_NS, all_specs, get_spec
from signing import generate_test_identity, load_signing_key
from tests.sandbox.harness import World, corpus, family, fast_settings, sign, start_world

_Q = f"{{{CEB_NS}}}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = start_world(tmp_path_factory.mktemp("customs"))
    yield w
    w.stop()


@pytest.fixture(autouse=True)
def _reset(world: World) -> None:
    assert world.admin("reset", {}).status_code == 200


def test_a_lone_inventory_list_goes_2_120_800_with_numbers_and_a_tax_bill(world: World):
    fam = family()
    resp = world.post("customs", sign(fam.inventory, world.declarant), "CEB621", cop="dsp_one")
    assert resp.status_code == 200
    assert resp.json() == {"status": "accepted", "copMsgId": "dsp_one"}
    doc = fam.inventory_guid
    assert world.receiver.wait_codes(doc, 3) == ["2", "120", "800"]
    receipts = world.receiver.for_doc(doc)
    assert {p.msg_type for p in receipts} == {"CEB622"}
    assert {p.sender for p in receipts} == {world.settings.customs_dxp_id}
    assert all(p.path == "/api/v1/receipts" for p in receipts)
    entries = [p.entries()[0] for p in receipts]
    assert re.fullmatch(r"B\d{17}", entries[0]["preNo"]) and "invtNo" not in entries[0]
    assert len({e["preNo"] for e in entries}) == 1
    assert re.fullmatch(r"4601\d{4}I\d{9}", entries[1]["invtNo"])
    assert entries[1]["invtNo"] == entries[2]["invtNo"]
    assert world.records()["customs"]["documents"][doc] == ["2", "120", "800"]

    (bill,) = world.receiver.wait_for(
        lambda p: (
            p.msg_type == "CEB816"
            and p.root.findtext(f"{_Q}Tax/{_Q}TaxHeadRd/{_Q}invtNo") == entries[1]["invtNo"]
        )
    )
    head = bill.root.find(f"{_Q}Tax/{_Q}TaxHeadRd")
    lines = bill.root.findall(f"{_Q}Tax/{_Q}TaxListRd")
    assert [ln.findtext(f"{_Q}taxPrice") for ln in lines] == ["396.00", "120.00"]
    for name in ("customsTax", "valueAddedTax", "consumptionTax"):
        total = sum(Decimal(ln.findtext(f"{_Q}{name}") or "0") for ln in lines)
        assert Decimal(head.findtext(f"{_Q}{name}") or "x") == total
    assert head.findtext(f"{_Q}valueAddedTax") == "46.96"  # 516.00 x 13 % x 70 %
    assert head.findtext(f"{_Q}taxNo", "").startswith(entries[1]["invtNo"])
    assert not world.receiver.problems
    assert all(not p.violations for p in world.receiver.pushed), [
        p.violations for p in world.receiver.pushed if p.violations
    ]


def test_the_same_copmsgid_twice_is_a_duplicate_and_produces_nothing_new(world: World):
    fam = family()
    signed = sign(fam.inventory, world.declarant)
    assert world.post("customs", signed, "CEB621", cop="dsp_dup").json()["status"] == "accepted"
    world.receiver.wait_codes(fam.inventory_guid, 3)
    before = world.records()["customs"]
    again = world.post("customs", signed, "CEB621", cop="dsp_dup")
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    after = world.records()["customs"]
    assert after["duplicates"] == before["duplicates"] + 1
    assert after["message_count"] == before["message_count"]
    assert list(after["messages"]).count("dsp_dup") == 1
    assert after["receipts"]["produced"] == before["receipts"]["produced"]
    assert world.receiver.codes(fam.inventory_guid) == ["2", "120", "800"]


@pytest.mark.parametrize(("hold", "final"), [(0.0, "800"), (1.0, "501")])
def test_selected_for_inspection_at_rate_1_then_released_or_held(
    world: World, hold: float, final: str
):
    world.admin("risk", {"customs_rate": 1, "hold_rate": hold})
    fam = family()
    world.post("customs", sign(fam.inventory, world.declarant), "CEB621")
    assert world.receiver.wait_codes(fam.inventory_guid, 4) == ["2", "120", "500", final]
    assert not any(p.violations for p in world.receiver.for_doc(fam.inventory_guid))


def test_never_selected_at_rate_0(world: World):
    world.admin("risk", {"customs_rate": 0})
    fams = [family() for _ in range(5)]
    for fam in fams:
        world.post("customs", sign(fam.inventory, world.declarant), "CEB621")
    for fam in fams:
        assert world.receiver.wait_codes(fam.inventory_guid, 3) == ["2", "120", "800"]


def test_a_bad_signature_is_answered_100_with_the_reason(world: World, tmp_path):
    generate_test_identity("Intruder", tmp_path / "x.key", tmp_path / "x.crt")
    fam = family()
    world.post(
        "customs",
        sign(fam.inventory, load_signing_key(tmp_path / "x.key", tmp_path / "x.crt")),
        "CEB621",
    )
    (code,) = world.receiver.wait_codes(fam.inventory_guid, 1)
    entry = world.receiver.for_doc(fam.inventory_guid)[0].entries()[0]
    assert code == "100" and entry["returnInfo"].startswith("验签失败 / ")
    assert "signature" in entry["returnInfo"]


def test_an_unregistered_sender_is_answered_100(world: World):
    fam = family()
    world.post("customs", sign(fam.inventory, world.declarant), "CEB621", sender="DXPNOBODY0000001")
    world.receiver.wait_codes(fam.inventory_guid, 1)
    (receipt,) = world.receiver.for_doc(fam.inventory_guid)
    assert receipt.receivers == ("DXPNOBODY0000001",)
    assert "no registered signing certificate" in receipt.entries()[0]["returnInfo"]


def test_a_format_error_is_answered_with_ceb900(world: World):
    root = etree.parse("tests/data/messages/CEB621/invalid-hs-code-length.xml").getroot()
    root.set("guid", "0" * 8 + "-0000-0000-0000-" + "0" * 11 + "1")
    world.post("customs", sign(root, world.declarant), "CEB621", cop="dsp_badformat")
    (receipt,) = world.receiver.wait_for(
        lambda p: p.msg_type == "CEB900" and p.entries()[0].get("oriCopMsgId") == "dsp_badformat"
    )
    entry = receipt.entries()[0]
    assert entry["returnStatus"] == "100" and entry["oriMessageType"] == "CEB621"
    assert "gcode" in entry["returnInfo"] and not receipt.violations


def test_a_broken_business_rule_is_answered_100_in_both_languages(world: World):
    fam = family().change("inventory", buyerIdNumber="110105194912310021")  # bad check digit
    world.post("customs", sign(fam.inventory, world.declarant), "CEB621")
    assert world.receiver.wait_codes(fam.inventory_guid, 2) == ["2", "100"]
    info = world.receiver.for_doc(fam.inventory_guid)[1].entries()[0]["returnInfo"]
    assert info.startswith("逻辑校验失败：") and " / logic check failed: " in info


@pytest.mark.parametrize(
    ("which", "message_type", "reply"),
    [
        ("order", "CEB311", "CEB312"),
        ("payment", "CEB411", "CEB412"),
        ("waybill", "CEB511", "CEB512"),
    ],
)
def test_order_payment_and_waybill_end_at_120_in_their_reply_format(
    world: World, which: str, message_type: str, reply: str
):
    fam = family()
    world.post("customs", sign(getattr(fam, which), world.declarant), message_type)
    doc = fam.head(which).findtext(f"{_Q}guid")
    assert world.receiver.wait_codes(doc, 2) == ["2", "120"]
    assert {p.msg_type for p in world.receiver.for_doc(doc)} == {reply}
    assert not any(p.violations for p in world.receiver.for_doc(doc))


def test_every_declaration_type_in_the_corpus_gets_receipts_that_validate(world: World):
    for spec in all_specs():
        if spec.kind != "declaration":
            continue
        root = corpus(spec.type)
        root.set("guid", "1" * 8 + "-1111-1111-1111-" + "1" * 12)
        world.post("customs", sign(root, world.declarant), spec.type, cop=f"dsp_all_{spec.type}")
    for spec in all_specs():
        if spec.kind != "declaration":
            continue
        assert spec.reply is not None
        found = _entries_of(world, spec.reply, 2)  # "2" then "120" (maybe packed with others)
        for p in found:
            assert not p.violations, (spec.type, p.violations)
            assert get_spec(p.msg_type).document == etree.QName(p.root[0]).localname


def _entries_of(world: World, reply: str, count: int, timeout: float = 10.0) -> list[Any]:
    """Pushed ``reply`` messages once they carry ``count`` entries in all."""
    deadline = time.monotonic() + timeout
    while True:
        found = world.receiver.select(lambda p: p.msg_type == reply)
        if sum(len(p.entries()) for p in found) >= count or time.monotonic() > deadline:
            assert sum(len(p.entries()) for p in found) >= count, (reply, found)
            return found
        time.sleep(0.02)


def test_the_credit_tier_of_the_agent_then_platform_picks_the_rate(tmp_path):
    settings = fast_settings(
        tmp_path,
        sandbox_credit_tiers="1105910159=untrusted,3101960ZZZ=AEO",
        sandbox_inspection_rates="AEO=0,general=0,untrusted=1",
    )
    risk = Risk(settings)
    assert risk.customs_selects(["1105910159", "3101960ZZZ"]) == (True, "untrusted")
    assert risk.customs_selects(["other", "3101960ZZZ"]) == (False, "AEO")
    assert risk.customs_selects(["other", "another"]) == (False, "general")
    risk.update({"customs_rate": 1})
    assert risk.customs_selects(["other", "3101960ZZZ"]) == (True, "AEO")
