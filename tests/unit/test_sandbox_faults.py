"""Fault modes switched at run time through /admin/faults, and the poll endpoint that serves
receipts the pushes lost."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from lxml import etree

from signing import TrustStore, verify_enveloped
from tests.sandbox.harness import DECLARANT, World, decode_polled, family, sign, start_world


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = start_world(tmp_path_factory.mktemp("faults"))
    yield w
    w.stop()


@pytest.fixture(autouse=True)
def _reset(world: World) -> Iterator[None]:
    assert world.admin("reset", {}).status_code == 200
    world.receiver.status = 200
    yield
    world.receiver.status = 200


def _inventory(world: World) -> tuple[str, bytes]:
    fam = family()
    return fam.inventory_guid, sign(fam.inventory, world.declarant)


def test_planned_outage_refuses_with_503_and_retry_after(world: World):
    assert world.admin("faults", {"authority": "customs", "outage_seconds": 30}).status_code == 200
    _doc, signed = _inventory(world)
    resp = world.post("customs", signed, "CEB621", cop="dsp_outage")
    assert resp.status_code == 503
    assert 1 <= int(resp.headers["Retry-After"]) <= 30
    assert resp.json()["error"].startswith("planned outage until 20")
    assert "dsp_outage" not in world.records()["customs"]["messages"]
    assert world.post("inspection", signed, "CEB621").status_code == 200  # only customs is out
    world.admin("faults", {"authority": "customs", "outage": None})
    assert world.post("customs", signed, "CEB621", cop="dsp_outage").json()["status"] == "accepted"


def test_an_outage_window_in_the_future_does_not_refuse_yet(world: World):
    start = datetime.now(UTC) + timedelta(hours=1)
    window = {"start": start.isoformat(), "end": (start + timedelta(hours=1)).isoformat()}
    faults = world.admin("faults", {"authority": "port", "outage": window}).json()
    assert faults["port"]["outage"] is not None and faults["port"]["in_outage"] is False
    _, signed = _inventory(world)
    assert world.post("customs", signed, "CEB621").status_code == 200


def test_error_rate_answers_500_without_taking_the_message(world: World):
    world.admin("faults", {"authority": "customs", "error_rate": 1})
    doc, signed = _inventory(world)
    assert world.post("customs", signed, "CEB621", cop="dsp_err").status_code == 500
    assert "dsp_err" not in world.records()["customs"]["messages"]
    world.admin("faults", {"authority": "customs", "error_rate": 0})
    assert world.post("customs", signed, "CEB621", cop="dsp_err").json()["status"] == "accepted"
    assert world.receiver.wait_codes(doc, 3) == ["2", "120", "800"]


def test_timeout_sleeps_past_the_client_without_blocking_other_requests(world: World):
    world.admin("faults", {"authority": "customs", "timeout_rate": 1, "timeout_seconds": 2})
    _doc, signed = _inventory(world)
    outcome: dict[str, object] = {}

    def slow() -> None:
        try:
            world.post("customs", signed, "CEB621", cop="dsp_timeout", timeout=0.5)
        except httpx.ReadTimeout as exc:
            outcome["timeout"] = exc

    thread = threading.Thread(target=slow)
    thread.start()
    time.sleep(0.1)
    started = time.monotonic()
    assert httpx.get(world.base + "/healthz", timeout=2).status_code == 200
    assert time.monotonic() - started < 0.5
    thread.join(5)
    assert "timeout" in outcome
    assert "dsp_timeout" not in world.records()["customs"]["messages"]
    time.sleep(2)  # let the sleeping request finish before the next test


def test_ack_lost_applies_the_message_then_answers_500(world: World):
    world.admin("faults", {"authority": "customs", "ack_lost_rate": 1})
    doc, signed = _inventory(world)
    assert world.post("customs", signed, "CEB621", cop="dsp_acklost").status_code == 500
    assert world.receiver.wait_codes(doc, 3) == ["2", "120", "800"]
    world.admin("faults", {"authority": "customs", "ack_lost_rate": 0})
    assert world.post("customs", signed, "CEB621", cop="dsp_acklost").json()["status"] == (
        "duplicate"
    )


def test_delay_slows_the_answer(world: World):
    world.admin("faults", {"authority": "customs", "delay": 0.4})
    _, signed = _inventory(world)
    started = time.monotonic()
    assert world.post("customs", signed, "CEB621").status_code == 200
    assert time.monotonic() - started >= 0.4


def test_dropped_receipts_are_never_pushed_but_can_be_polled(world: World):
    world.admin("faults", {"authority": "customs", "drop_receipts": 1})
    first = httpx.get(
        world.base + "/customs/receipts", params={"receiver": DECLARANT, "after": 0}
    ).json()
    cursor = first["next"]
    doc, signed = _inventory(world)
    world.post("customs", signed, "CEB621")
    trust = TrustStore.from_pem_files([world.settings.keys_path / "sandbox-customs.crt"])
    q = "{http://www.chinaport.gov.cn/ceb}"
    deadline = time.monotonic() + 5
    mine: list[tuple[int, str]] = []
    while time.monotonic() < deadline and len(mine) < 3:
        body = httpx.get(
            world.base + "/customs/receipts", params={"receiver": DECLARANT, "after": cursor}
        ).json()
        mine = []
        for seq, env in decode_polled(body["receipts"]):
            assert env.sender_id == world.settings.customs_dxp_id
            root = verify_enveloped(etree.fromstring(env.data), trust).root
            if root[0].findtext(f"{q}guid") == doc:
                assert env.msg_type == "CEB622"
                mine.append((seq, root[0].findtext(f"{q}returnStatus") or ""))
        time.sleep(0.05)
    assert world.receiver.codes(doc) == []
    assert [code for _, code in mine] == ["2", "120", "800"]
    seqs = [seq for seq, _ in mine]
    assert seqs == sorted(seqs) and seqs[0] > cursor and body["next"] >= seqs[-1]
    assert world.records()["customs"]["receipts"]["dropped"] >= 3
    empty = httpx.get(
        world.base + "/customs/receipts", params={"receiver": DECLARANT, "after": body["next"]}
    ).json()
    assert empty == {"receipts": [], "next": body["next"]}


def test_poll_serves_the_exact_pushed_envelope_bytes(world: World):
    doc, signed = _inventory(world)
    world.post("customs", signed, "CEB621")
    world.receiver.wait_codes(doc, 3)
    body = httpx.get(world.base + "/customs/receipts", params={"receiver": DECLARANT}).json()
    polled = {base64.b64decode(item["envelope"]) for item in body["receipts"]}
    assert {p.raw for p in world.receiver.for_doc(doc)} <= polled


def test_duplicated_receipts_are_pushed_twice(world: World):
    world.admin("faults", {"authority": "customs", "duplicate_receipts": 1})
    doc, signed = _inventory(world)
    world.post("customs", signed, "CEB621")
    assert world.receiver.wait_codes(doc, 6) == ["2", "2", "120", "120", "800", "800"]


def test_out_of_order_delivers_a_documents_receipts_in_reverse(world: World):
    world.admin("faults", {"authority": "customs", "out_of_order": True})
    doc, signed = _inventory(world)
    world.post("customs", signed, "CEB621")
    assert world.receiver.wait_codes(doc, 3) == ["800", "120", "2"]


def test_receipts_are_retried_until_the_gateway_takes_them(world: World):
    world.receiver.status = 503
    doc, signed = _inventory(world)
    world.post("customs", signed, "CEB621")
    time.sleep(0.5)
    assert world.receiver.codes(doc) == []
    world.receiver.status = 200
    codes = world.receiver.wait_codes(doc, 3, timeout=10)
    assert sorted(codes) == ["120", "2", "800"]
    assert world.records()["customs"]["receipts"]["failed_attempts"] >= 1


@pytest.mark.parametrize(
    "body",
    [
        {"authority": "nobody"},
        {"authority": "customs", "error_rate": 2},
        {"authority": "customs", "error_rate": "x"},
        {"authority": "customs", "bogus": 1},
        {"authority": "customs", "out_of_order": "yes"},
        {"authority": "customs", "outage": {"start": "not a date", "end": "x"}},
        {
            "authority": "customs",
            "outage": {"start": "2026-01-02T00:00:00Z", "end": "2026-01-01T00:00:00Z"},
        },
    ],
)
def test_bad_admin_input_is_400_with_a_reason(world: World, body: dict):
    resp = world.admin("faults", body)
    assert resp.status_code == 400 and resp.json()["error"]


@pytest.mark.parametrize(
    "body", [{"customs_rate": -1}, {"match_mode": "sometimes"}, {"x": 1}, {"seed": "a"}]
)
def test_bad_risk_input_is_400(world: World, body: dict):
    resp = world.admin("risk", body)
    assert resp.status_code == 400 and resp.json()["error"]


def test_partial_updates_merge_and_reset_restores(world: World):
    world.admin("faults", {"authority": "inspection", "error_rate": 0.5})
    world.admin("faults", {"authority": "inspection", "drop_receipts": 0.25})
    faults = httpx.get(world.base + "/admin/faults").json()
    assert faults["inspection"]["error_rate"] == 0.5
    assert faults["inspection"]["drop_receipts"] == 0.25
    world.admin("risk", {"ciq_rate": 1, "match_mode": "strict"})
    reset = world.admin("reset", {}).json()
    assert reset["faults"]["inspection"]["error_rate"] == 0.0
    assert reset["risk"]["ciq_rate"] == 0.0 and reset["risk"]["match_mode"] == "present"


def test_poll_needs_a_receiver(world: World):
    assert httpx.get(world.base + "/customs/receipts").status_code == 400
    bad = httpx.get(world.base + "/customs/receipts", params={"receiver": "X", "after": "z"})
    assert bad.status_code == 400
