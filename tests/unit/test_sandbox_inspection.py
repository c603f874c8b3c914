"""The sandbox inspection & quarantine authority: its own key and sender id, CEB622-format
receipts keyed by the inventory guid, and its own selection rate."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sandbox.harness import World, family, sign, start_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = start_world(tmp_path_factory.mktemp("inspection"))
    yield w
    w.stop()


@pytest.fixture(autouse=True)
def _reset(world: World) -> None:
    assert world.admin("reset", {}).status_code == 200


def test_not_selected_goes_120_then_800_signed_by_inspection(world: World):
    fam = family()
    resp = world.post("inspection", sign(fam.inventory, world.declarant), "CEB621", cop="ciq1")
    assert resp.json() == {"status": "accepted", "copMsgId": "ciq1"}
    assert world.receiver.wait_codes(fam.inventory_guid, 2) == ["120", "800"]
    receipts = world.receiver.for_doc(fam.inventory_guid)
    assert {p.sender for p in receipts} == {world.settings.inspection_dxp_id}
    assert {p.msg_type for p in receipts} == {"CEB622"}
    assert not any(p.violations for p in receipts)
    assert all("invtNo" not in p.entries()[0] for p in receipts)
    assert world.records()["inspection"]["documents"][fam.inventory_guid] == ["120", "800"]
    assert (
        world.post(
            "inspection", sign(family().inventory, world.declarant), "CEB621", cop="ciq1"
        ).json()["status"]
        == "duplicate"
    )


@pytest.mark.parametrize(("hold", "final"), [(0, "800"), (1, "501")])
def test_selected_goes_500_then_released_or_held(world: World, hold: int, final: str):
    world.admin("risk", {"ciq_rate": 1, "hold_rate": hold})
    fam = family()
    world.post("inspection", sign(fam.inventory, world.declarant), "CEB621")
    assert world.receiver.wait_codes(fam.inventory_guid, 3) == ["120", "500", final]


def test_a_message_it_does_not_handle_is_a_format_error(world: World):
    fam = family()
    world.post("inspection", sign(fam.order, world.declarant), "CEB311", cop="ciq_order")
    (receipt,) = world.receiver.wait_for(
        lambda p: p.msg_type == "CEB900" and p.entries()[0].get("oriCopMsgId") == "ciq_order"
    )
    assert receipt.sender == world.settings.inspection_dxp_id
    assert "CEB311" in receipt.entries()[0]["returnInfo"]


def test_a_bad_signature_is_100(world: World):
    fam = family()
    world.post("inspection", sign(fam.inventory, world.gateway_key), "CEB621")
    assert world.receiver.wait_codes(fam.inventory_guid, 1) == ["100"]
    info = world.receiver.for_doc(fam.inventory_guid)[0].entries()[0]["returnInfo"]
    assert info.startswith("验签失败 / ")
