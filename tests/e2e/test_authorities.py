"""The three authorities, over HTTP, as a broker would live with them (issue scenarios):
green path, inspection by either or both (one joint inspection), the three documents in any
order, a mismatched payment, lost, duplicated and out-of-order receipts, and an outage."""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator

import httpx
import pytest

from gateway.examples import fresh_ceb621, fresh_parcel
from tests.e2e.stack import Stack, wait_for_status

XML = {"Content-Type": "application/xml"}


@pytest.fixture
def sandbox(stack: Stack) -> Iterator[httpx.Client]:
    """The sandbox's admin API; every test starts and ends with the defaults."""
    with httpx.Client(base_url=stack.sandbox, timeout=10) as admin:
        admin.post("/admin/reset").raise_for_status()
        yield admin
        admin.post("/admin/reset").raise_for_status()


def _declare(client: httpx.Client, body: bytes) -> str:
    resp = client.post("/api/v1/declarations", content=body, headers=XML)
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def _codes(body: dict, source: str) -> list[str]:
    return [e["code"] for e in body["events"] if e["kind"] == "receipt" and e["source"] == source]


def test_green_path_releases_once_and_closes_at_gate_out(stack: Stack, sandbox: httpx.Client):
    with stack.client() as client:
        did = _declare(client, fresh_ceb621())
        body = wait_for_status(client, did, {"closed"})
    assert body["authorities"]["customs"]["status"] == "800"
    assert body["authorities"]["inspection"]["status"] == "800"  # infant formula is routed
    kinds = [e["kind"] for e in body["events"]]
    for kind in ("manifest_sent", "arrived", "release_queued", "release_sent", "gate_out"):
        assert kinds.count(kind) == 1, (kind, kinds)
    records = sandbox.get("/records").json()
    assert records["port"]["releases"][body["logistics_no"]] == 1


@pytest.mark.parametrize(
    ("risk", "inspecting"),
    [
        ({"customs_rate": 1, "ciq_rate": 0}, ["customs"]),
        ({"customs_rate": 0, "ciq_rate": 1}, ["inspection"]),
        ({"customs_rate": 1, "ciq_rate": 1}, ["customs", "inspection"]),
    ],
)
def test_inspection_by_either_or_both_is_one_joint_inspection(
    stack: Stack, sandbox: httpx.Client, risk: dict, inspecting: list[str]
):
    sandbox.post("/admin/risk", json={**risk, "hold_rate": 0}).raise_for_status()
    with stack.client() as client:
        did = _declare(client, fresh_ceb621())
        body = wait_for_status(client, did, {"released", "closed"})
    kinds = [e["kind"] for e in body["events"]]
    assert kinds.count("inspection_open") == 1
    assert kinds.count("inspection_join") == len(inspecting) - 1
    for authority in inspecting:
        assert "500" in _codes(body, authority)
    assert kinds.count("release_queued") == 1


def test_a_hold_after_inspection_is_shown_and_nothing_is_released(
    stack: Stack, sandbox: httpx.Client
):
    sandbox.post("/admin/risk", json={"customs_rate": 1, "ciq_rate": 0, "hold_rate": 1})
    with stack.client() as client:
        did = _declare(client, fresh_ceb621())
        body = wait_for_status(client, did, {"held"})
    assert body["authorities"]["customs"]["status"].startswith("5")
    assert "release_queued" not in [e["kind"] for e in body["events"]]


def test_the_three_documents_match_in_every_order(stack: Stack, sandbox: httpx.Client):
    sandbox.post(
        "/admin/risk", json={"match_mode": "strict", "match_timeout": 20}
    ).raise_for_status()
    orders = list(itertools.permutations(["CEB311", "CEB411", "CEB511", "CEB621"]))
    assert len(orders) == 24
    with stack.client() as client:
        submitted = []
        for order in orders:  # one parcel per order, all in flight together
            parcel = fresh_parcel()
            submitted.append({t: _declare(client, parcel[t]) for t in order})
        for ids in submitted:
            body = wait_for_status(client, ids["CEB621"], {"released", "closed"}, timeout=60)
            assert "100" not in _codes(body, "customs"), body["authorities"]
            for t in ("CEB311", "CEB411", "CEB511"):
                other = wait_for_status(client, ids[t], {"under_review"})
                assert other["authorities"]["customs"]["status"] == "120", other


def test_a_mismatched_payment_is_shown_at_once_by_the_gateway_and_by_customs(
    stack: Stack, sandbox: httpx.Client
):
    sandbox.post("/admin/risk", json={"match_mode": "present"}).raise_for_status()
    parcel = fresh_parcel()
    wrong = parcel["CEB411"].replace(
        b"<ceb:amountPaid>552.96</ceb:amountPaid>", b"<ceb:amountPaid>452.96</ceb:amountPaid>"
    )
    assert wrong != parcel["CEB411"]
    with stack.client() as client:
        order_id = _declare(client, parcel["CEB311"])
        pay_id = _declare(client, wrong)  # no list yet: nothing to compare with
        for did in (order_id, pay_id):
            wait_for_status(client, did, {"under_review"})
        refused = client.post("/api/v1/declarations", content=parcel["CEB621"], headers=XML)
    assert refused.status_code == 422
    (problem,) = [e for e in refused.json()["errors"] if e["code"] == "rule.match.payment"]
    assert "452.96" in problem["message"] and "552.96" in problem["message"]
    assert problem["message_zh"] == "支付金额与订单实付金额不符"


def test_lost_receipts_are_recovered_by_polling(stack: Stack, sandbox: httpx.Client):
    sandbox.post(
        "/admin/faults", json={"authority": "customs", "drop_receipts": 1}
    ).raise_for_status()
    with stack.client() as client:
        did = _declare(client, fresh_ceb621())
        body = wait_for_status(client, did, {"released", "closed"}, timeout=40)
    assert _codes(body, "customs") == ["2", "120", "800"]


def test_lost_port_events_are_recovered_by_polling(stack: Stack, sandbox: httpx.Client):
    sandbox.post("/admin/faults", json={"authority": "port", "drop_receipts": 1}).raise_for_status()
    with stack.client() as client:
        did = _declare(client, fresh_ceb621())
        body = wait_for_status(client, did, {"closed"}, timeout=40)
    kinds = [e["kind"] for e in body["events"]]
    assert kinds.count("arrived") == 1 and kinds.count("gate_out") == 1


def test_duplicated_and_out_of_order_receipts_are_applied_once_and_in_order(
    stack: Stack, sandbox: httpx.Client
):
    sandbox.post(
        "/admin/faults",
        json={"authority": "customs", "duplicate_receipts": 1, "out_of_order": True},
    ).raise_for_status()
    with stack.client() as client:
        did = _declare(client, fresh_ceb621())
        body = wait_for_status(client, did, {"released", "closed"}, timeout=40)
        time.sleep(1)
        body = client.get(f"/api/v1/declarations/{did}").json()
    codes = _codes(body, "customs")
    assert sorted(codes) == ["120", "2", "800"]  # each once, duplicates dropped
    assert body["authorities"]["customs"]["status"] == "800"  # late ones never went back
    assert [e["kind"] for e in body["events"]].count("release_queued") == 1


def test_an_authority_down_for_a_while_loses_nothing_and_gets_nothing_twice(
    stack: Stack, sandbox: httpx.Client
):
    sandbox.post(
        "/admin/faults", json={"authority": "customs", "outage_seconds": 3}
    ).raise_for_status()
    with stack.client() as client:
        ids = [_declare(client, fresh_ceb621()) for _ in range(5)]
        bodies = [wait_for_status(client, did, {"closed"}, timeout=60) for did in ids]
    assert all("send_retry" in [e["kind"] for e in b["events"]] for b in bodies)
    records = sandbox.get("/records").json()
    assert records["customs"]["duplicates"] == 0
    for b in bodies:
        assert records["port"]["releases"][b["logistics_no"]] == 1


def test_a_held_list_is_cancelled_through_the_api(stack: Stack, sandbox: httpx.Client):
    sandbox.post("/admin/risk", json={"customs_rate": 1, "ciq_rate": 0, "hold_rate": 1})
    with stack.client() as client:
        did = _declare(client, fresh_ceb621())
        held = wait_for_status(client, did, {"held"})
        assert held["invt_no"]
        no_reason = client.post(f"/api/v1/declarations/{did}/cancel", json={"reason": ""})
        assert no_reason.status_code == 422
        resp = client.post(
            f"/api/v1/declarations/{did}/cancel",
            json={"reason": "消费者取消订单 / cancelled by the buyer"},
        )
        assert resp.status_code == 202, resp.text
        assert resp.json()["type"] == "CEB623"
        body = wait_for_status(client, did, {"cancelled"})
        again = client.post(f"/api/v1/declarations/{did}/cancel", json={"reason": "again"})
    assert again.status_code == 409
    assert "release_queued" not in [e["kind"] for e in body["events"]]
