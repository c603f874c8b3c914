"""A busy authority packs what is due together for one receiver into one signed message
(at most 100 entries), pushed by several threads; each entry still arrives once."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from lxml import etree

from gateway.provisioning import sandbox_key_paths
from sandbox.faults import Faults
from sandbox.outbox import Outbox
from sandbox.packing import MAX_ENTRIES, entries, pack, pack_key
from sandbox.receipts import PortConsignment, format_error, inventory_return, port_event
from signing import load_signing_key
from signing.policy import policy_by_name
from tests.sandbox.harness import DECLARANT, World, start_world

GUIDS = sorted(f"00000000-0000-4000-8000-{n:012d}" for n in range(150))


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = start_world(tmp_path_factory.mktemp("packing"))
    yield w
    w.stop()


def _return(guid: str, code: str = "120") -> etree._Element:
    return inventory_return(
        {"guid": guid, "copNo": "C1", "preNo": "B" * 18, "returnStatus": code,
         "returnTime": "20261201120000000", "returnInfo": "ok"}
    )  # fmt: skip


def _outbox(world: World, senders: int = 1) -> Outbox:
    url = f"http://127.0.0.1:{world.settings.port}/api/v1/receipts"
    key = load_signing_key(*sandbox_key_paths(world.settings, "customs"))
    return Outbox(
        "customs", url, world.settings.customs_dxp_id, key, policy_by_name("rsa-sha256"),
        Faults(), senders=senders,
    )  # fmt: skip


def test_what_is_due_together_travels_in_messages_of_at_most_100_entries(world: World):
    outbox = _outbox(world, senders=1)
    try:
        outbox.schedule_series([(_return(g), 0.3) for g in GUIDS], DECLARANT, "CEB622")
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and len(_arrived(world)) < len(GUIDS):
            time.sleep(0.05)
        pushed = [p for p in world.receiver.select(lambda p: p.msg_type == "CEB622")]
        mine = [p for p in pushed if any(e.get("guid") in GUIDS for e in p.entries())]
        assert sorted(_arrived(world)) == GUIDS  # each entry once
        assert [len(p.entries()) for p in mine] == [100, 50]
        assert [p.violations for p in mine] == [[], []]  # schema-valid, signed as packed
        stats = outbox.snapshot()
        assert (stats["produced"], stats["packed"], stats["delivered"]) == (150, 2, 2)
        logged = outbox.after(DECLARANT, 0)
        assert [body for _, body in logged] == [p.raw for p in mine]  # the poll log too
    finally:
        outbox.stop()


def _arrived(world: World) -> list[str]:
    return [
        e["guid"]
        for p in world.receiver.select(lambda p: p.msg_type == "CEB622")
        for e in p.entries()
        if e.get("guid") in GUIDS
    ]


def test_only_messages_of_one_kind_and_header_pack():
    a, b = _return("A"), _return("B")
    assert pack_key(a) == pack_key(b) is not None
    assert entries(pack([a, b])) == 2 and entries(b) == 0
    at = port_event("Arrival", "4601", [PortConsignment("L1")], _now())
    same_port = port_event("Arrival", "4601", [PortConsignment("L2")], _now())
    other_port = port_event("Arrival", "5100", [PortConsignment("L3")], _now())
    gate = port_event("GateOut", "4601", [PortConsignment("L1")], _now())
    assert pack_key(at) == pack_key(same_port) != pack_key(other_port)
    assert pack_key(at) != pack_key(gate) and pack_key(at) != pack_key(a)
    assert pack_key(format_error("X", "CEB621", "bad", "20261201120000000")) is None  # 1 max
    assert MAX_ENTRIES == 100


def _now():
    from datetime import UTC, datetime

    return datetime.now(UTC)


def test_a_tax_bill_never_overtakes_the_receipt_that_numbers_its_list(world: World):
    """Due together, status receipts leave before the results that name their numbers,
    even a bill scheduled before them; the bills still pack together."""
    from sandbox.receipts import tax_bill_message
    from sandbox.tax import tax_bill

    def bill(invt_no: str) -> etree._Element:
        lines = [{"gnum": "1", "gcode": "1901101000", "totalPrice": "10.00"}]
        return tax_bill_message(tax_bill(invt_no, lines), {}, "20261201120000000")

    guid = "00000000-0000-4000-8000-999999999999"
    before = len(world.receiver.select(lambda p: True))
    outbox = _outbox(world, senders=1)
    try:
        outbox.schedule(bill("46012026I000000001"), 0.3, DECLARANT, "CEB816")
        outbox.schedule(_return(guid), 0.3, DECLARANT, "CEB622")
        outbox.schedule(bill("46012026I000000002"), 0.3, DECLARANT, "CEB816")
        deadline = time.monotonic() + 10
        while (
            time.monotonic() < deadline and len(world.receiver.select(lambda p: True)) < before + 2
        ):
            time.sleep(0.05)
        pushed = world.receiver.select(lambda p: True)[before:]
        assert [p.msg_type for p in pushed] == ["CEB622", "CEB816"]
        assert len(pushed[1].entries()) >= 1 and len(pushed[1].root.findall("{*}Tax")) == 2
    finally:
        outbox.stop()
