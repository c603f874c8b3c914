"""A receipt message that packs many entries (CEB allows 100 per message): verified once,
kept once, applied in one transaction; a twin entry never fails its neighbours."""

from __future__ import annotations

import threading

import pytest
from lxml import etree
from sqlalchemy import Column, Integer, MetaData, Table, func, insert, select

from adapters.dxp import Envelope, build_envelope
from gateway.examples import fresh_ceb621
from gateway.persistence import audit_log
from gateway.persistence import repository as repo
from gateway.persistence import tables as t
from gateway.provisioning import sandbox_key_paths
from gateway.services import audit
from gateway.services import receipts as receipts_service
from gateway.services.declare import declare
from gateway.services.inbound import apply_message
from gateway.services.receipts import ReceiptOutcome, record_receipts
from gateway.services.runtime import Runtime
from gateway.settings import Settings
from sandbox.packing import pack
from sandbox.receipts import inventory_return, tax_bill_message
from sandbox.tax import tax_bill
from signing import load_signing_key, sign_enveloped


def _entry(guid: str, code: str, n: int) -> etree._Element:
    return inventory_return(
        {
            "guid": guid,
            "copNo": "COP1",
            "preNo": f"B2026112300000{n:04d}",
            "invtNo": f"46012026I00000{n:04d}" if code != "2" else "",
            "returnStatus": code,
            "returnTime": f"20261123120000{code:0>3}",
            "returnInfo": "ok",
        }
    )


def _packed(settings: Settings, entries: list[tuple[str, str]]) -> bytes:
    root = pack([_entry(guid, code, n) for n, (guid, code) in enumerate(entries)])
    sign_enveloped(root, load_signing_key(*sandbox_key_paths(settings, "customs")))
    return build_envelope(
        Envelope(
            "R-packed",
            settings.customs_dxp_id,
            (settings.demo_org_dxp_id,),
            "CEB622",
            etree.tostring(root),
        )
    )


def _declared(runtime: Runtime, org_id: str, n: int) -> list[tuple[str, str]]:
    out = []
    for _ in range(n):
        ref = declare(runtime, org_id, fresh_ceb621(), "application/xml").declarations[0]
        out.append((ref.id, ref.doc_guid))
    return out


def _codes(runtime: Runtime, did: str) -> list[str]:
    with runtime.engine.connect() as conn:
        return [e["code"] for e in repo.events_of(conn, did) if e["kind"] == "receipt"]


def test_one_message_of_many_entries_is_applied_in_order_and_kept_once(
    settings: Settings, runtime: Runtime, org_id: str
):
    docs = _declared(runtime, org_id, 4)
    # Each list's three receipts in one message, in order, lists interleaved.
    entries = [(guid, code) for code in ("2", "120", "800") for _, guid in docs]
    body = _packed(settings, entries)
    outcome = record_receipts(runtime, body)
    assert (outcome.applied, outcome.duplicates, outcome.stale) == (12, 0, 0)
    with runtime.engine.connect() as conn:
        for did, _ in docs:
            assert repo.get_declaration(conn, did)["status"] == "released"
        kept = conn.execute(select(t.inbound_messages.c.digest)).scalars().all()
        digests = set(conn.execute(select(t.receipts.c.message_digest)).scalars())
        raw = conn.execute(select(func.count()).where(t.receipts.c.raw_xml.is_not(None)))
    assert len(kept) == 1 and digests == set(kept)
    assert raw.scalar() == 0  # the message is kept once, not once per entry
    assert all(_codes(runtime, did) == ["2", "120", "800"] for did, _ in docs)
    # One audit entry for the message (the chain head is updated once), naming every list.
    with runtime.engine.connect() as conn:
        applied = [
            s.entry for s in audit_log.iter_entries(conn) if s.entry.action == "receipt.applied"
        ]
    assert len(applied) == 1
    assert set(applied[0].objects) == {did for did, _ in docs}
    assert applied[0].details == {"entries": 12, "type": "CEB622", "code": ["120", "2", "800"]}
    assert audit.verify(runtime.engine).ok

    again = record_receipts(runtime, body)
    assert (again.applied, again.duplicates) == (0, 12)


def test_a_message_applied_whole_before_is_answered_without_verifying_it_again(
    settings: Settings, runtime: Runtime, org_id: str, monkeypatch: pytest.MonkeyPatch
):
    """The relay's poll brings back every message already pushed: checking its signature
    again was most of the poll's CPU. A changed byte is a new message and is verified."""
    docs = _declared(runtime, org_id, 2)
    body = _packed(settings, [(guid, "120") for _, guid in docs])
    assert record_receipts(runtime, body).applied == 2

    def refuse(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("verified again")

    monkeypatch.setattr(receipts_service, "verify_enveloped", refuse)
    again = record_receipts(runtime, body)
    assert (again.applied, again.duplicates, again.message_type) == (0, 2, "CEB622")
    other = _packed(settings, [(guid, "800") for _, guid in docs])
    with pytest.raises(AssertionError, match="verified again"):
        record_receipts(runtime, other)


def test_a_packed_message_racing_its_own_twin_applies_each_entry_once(
    settings: Settings, runtime: Runtime, org_id: str
):
    docs = _declared(runtime, org_id, 3)
    body = _packed(settings, [(guid, "120") for _, guid in docs])
    outcomes: list[ReceiptOutcome] = []
    barrier = threading.Barrier(4)

    def deliver() -> None:
        barrier.wait()
        outcomes.append(record_receipts(runtime, body))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(o.applied for o in outcomes) == 3
    assert sum(o.duplicates for o in outcomes) == 9
    assert all(_codes(runtime, did) == ["120"] for did, _ in docs)


def test_a_refused_entry_is_retried_alone_and_its_neighbours_still_apply(runtime: Runtime):
    """The fallback: when one entry's insert is refused (its twin committed first), the
    message is applied one entry per transaction; only that entry counts as a duplicate."""
    meta = MetaData()
    seen = Table("packed_probe", meta, Column("n", Integer, primary_key=True))
    meta.create_all(runtime.engine)
    with runtime.engine.begin() as conn:
        conn.execute(insert(seen).values(n=2))  # entry 2's twin, already committed

    def step(n: int):
        def run(conn, digest, outcome, ring) -> None:
            assert len(digest) == 64
            conn.execute(insert(seen).values(n=n))
            outcome.applied += 1

        return run

    outcome = apply_message(
        runtime,
        lambda: ReceiptOutcome("customs", "CEB622"),
        ("customs", "CEB622", b"<probe/>"),
        [step(1), step(2), step(3)],
    )
    assert (outcome.applied, outcome.duplicates) == (2, 1)
    with runtime.engine.connect() as conn:
        assert sorted(conn.execute(select(seen.c.n)).scalars()) == [1, 2, 3]
        assert conn.execute(select(func.count()).select_from(t.inbound_messages)).scalar() == 1


def test_a_tax_bill_before_its_lists_number_waits_and_applies_when_it_comes_again(
    settings: Settings, runtime: Runtime, org_id: str
):
    """An entry that matches nothing yet leaves its message unsettled: the poll's second
    copy of the same bytes is applied, not answered as a duplicate."""
    [(did, guid)] = _declared(runtime, org_id, 1)
    invt_no = "46012026I000000000"  # what _entry gives the first list's 120
    billed = tax_bill(invt_no, [{"gnum": "1", "gcode": "1901101000", "totalPrice": "100.00"}])
    root = tax_bill_message(
        billed,
        {"customsCode": "4601"},
        "20261201120000000",
    )
    sign_enveloped(root, load_signing_key(*sandbox_key_paths(settings, "customs")))
    bill = build_envelope(
        Envelope("R-bill", settings.customs_dxp_id, ("x",), "CEB816", etree.tostring(root))
    )
    early = record_receipts(runtime, bill)
    assert (early.applied, early.unmatched) == (0, [invt_no])
    assert record_receipts(runtime, _packed(settings, [(guid, "120")])).applied == 1
    late = record_receipts(runtime, bill)  # the same bytes, polled again
    assert (late.applied, late.duplicates) == (1, 0)
    assert record_receipts(runtime, bill).duplicates == 1  # settled now
    with runtime.engine.connect() as conn:
        assert repo.get_declaration(conn, did)["tax"]["bill"]["taxNo"] == billed.tax_no
