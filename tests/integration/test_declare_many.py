"""declare_many (bulk uploads) answers every message exactly as declaring them one by one
would: the same acceptances, the same refusals with the same reason codes, the same rows.

Each test runs the same submissions through declare_many on one database and through
declare, one at a time, on a second one, and compares the answers and what was stored.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from gateway.bootstrap import build_runtime
from gateway.domain.errors import GatewayError, SigningFailed
from gateway.examples import fresh_ceb621, fresh_parcel
from gateway.persistence import tables as t
from gateway.provisioning import ensure_demo_org, ensure_keys, init_db
from gateway.services.declare import declare
from gateway.services.declare_many import Submission, declare_many
from gateway.services.runtime import Runtime
from gateway.settings import Settings


@pytest.fixture
def routing() -> dict[str, str]:
    # Customs and the port, so manifests and arrivals are planned too; a small quota.
    return {"inspection_hs_prefixes": "", "port_message_types": "CEB621", "annual_quota": "800"}


@pytest.fixture
def twin(settings: Settings, tmp_path: Path) -> Iterator[Runtime]:
    """A second, independent database with the same settings: the one-by-one reference."""
    data = tmp_path / "twin"
    data.mkdir()
    s = replace(settings, data_dir=str(data))
    ensure_keys(s)
    init_db(s)
    ensure_demo_org(s)
    rt = build_runtime(s)
    yield replace(rt, ring=lambda ids: None)
    rt.engine.dispose()


def _org(rt: Runtime) -> str:
    with rt.engine.connect() as conn:
        return str(conn.execute(select(t.organisations.c.id)).scalar_one())


def _new_guids(body: bytes) -> bytes:
    """The same documents (same business keys) under new message and document guids."""
    return re.sub(
        rb"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}",
        lambda _m: str(uuid.uuid4()).upper().encode(),
        body,
    )


def _answer(outcome: Any) -> tuple[Any, ...]:
    if isinstance(outcome, GatewayError):
        return ("refused", outcome.status, tuple(sorted(v.code for v in outcome.violations)))
    return ("accepted", outcome.replayed, len(outcome.declarations))


def _one_by_one(rt: Runtime, subs: list[Submission]) -> list[tuple[Any, ...]]:
    org, out = _org(rt), []
    for s in subs:
        try:
            out.append(_answer(declare(rt, org, s.body, s.content_type, s.idempotency_key)))
        except GatewayError as exc:
            out.append(_answer(exc))
    return out


def _stored(rt: Runtime) -> dict[str, Any]:
    with rt.engine.connect() as conn:
        counts = {
            table.name: conn.execute(select(func.count()).select_from(table)).scalar_one()
            for table in (
                t.messages,
                t.declarations,
                t.authority_statuses,
                t.events,
                t.dispatches,
                t.declaration_parties,
            )
        }
        statuses = sorted(
            (r.doc_guid, r.status) for r in conn.execute(select(t.declarations)).all()
        )
    return {"counts": counts, "statuses": statuses}


def _tricky() -> list[Submission]:
    """Valid messages, and every way one of them can meet an earlier one of the same lot."""
    a, b = fresh_ceb621(), fresh_ceb621(2)
    same_buyer = [fresh_ceb621(2, buyer_id="110101199003070011") for _ in range(2)]
    change = _new_guids(a).replace(b"<ceb:appType>1</ceb:appType>", b"<ceb:appType>2</ceb:appType>")
    invalid = fresh_ceb621().replace(
        b"<ceb:gcode>1901101000</ceb:gcode>", b"<ceb:gcode>x</ceb:gcode>"
    )
    parcel = fresh_parcel()
    mismatched = fresh_parcel()
    mismatched["CEB621"] = re.sub(
        rb"<ceb:buyerName>[^<]*</ceb:buyerName>",
        "<ceb:buyerName>李四</ceb:buyerName>".encode(),
        mismatched["CEB621"],
    )
    bodies = [
        a,
        b,
        a,  # the same message again: its guid was declared
        _new_guids(a),  # the same business key under new guids
        change,  # appType 2 of a, not yet accepted by customs: supersedes it
        *same_buyer,  # two lists of one buyer in a message: over the quota together
        invalid,
        b"<not xml",
        parcel["CEB311"],
        parcel["CEB411"],
        parcel["CEB511"],
        parcel["CEB621"],  # meets its partners, stored before it
        mismatched["CEB311"],
        mismatched["CEB411"],
        mismatched["CEB511"],
        mismatched["CEB621"],  # disagrees with its order: 三单对碰
        *(fresh_ceb621() for _ in range(5)),
    ]
    return [Submission(body, "application/xml", f"k{n}") for n, body in enumerate(bodies)]


def test_a_lot_with_every_kind_of_conflict_is_answered_as_one_by_one(
    runtime: Runtime, twin: Runtime, org_id: str
):
    subs = _tricky()
    bulk = [_answer(o) for o in declare_many(runtime, org_id, subs)]
    assert bulk == _one_by_one(twin, subs)
    kinds = {a[0] for a in bulk}
    assert kinds == {"accepted", "refused"}
    codes = {c for a in bulk if a[0] == "refused" for c in a[2]}
    # The lot really exercises what it claims to (so equality above means something).
    assert {"message.duplicate_guid", "document.duplicate_business_key"} <= codes
    assert any(c.startswith("rule.match.") for c in codes)
    assert "rule.quota.annual_limit" in codes
    assert _stored(runtime) == _stored(twin)


def test_a_lot_run_again_replays_every_accepted_message_and_stores_nothing_new(
    runtime: Runtime, org_id: str
):
    subs = [Submission(fresh_ceb621(), "application/xml", f"again-{n}") for n in range(7)]
    first = declare_many(runtime, org_id, subs)
    before = _stored(runtime)
    again = declare_many(runtime, org_id, subs)
    assert [o.message_id for o in again] == [o.message_id for o in first]
    assert all(o.replayed for o in again) and not any(o.replayed for o in first)
    assert _stored(runtime) == before


def test_a_key_reused_with_another_body_is_refused_in_a_lot(runtime: Runtime, org_id: str):
    declare_many(runtime, org_id, [Submission(fresh_ceb621(), "application/xml", "reused")])
    (outcome,) = declare_many(
        runtime, org_id, [Submission(fresh_ceb621(), "application/xml", "reused")]
    )
    assert isinstance(outcome, GatewayError)
    assert [v.code for v in outcome.violations] == ["idempotency.key_reused"]


def test_a_lot_writes_its_messages_in_one_transaction_with_one_statement_per_table(
    runtime: Runtime, org_id: str
):
    from sqlalchemy import event

    inserts: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO DECLARATIONS"):
            inserts.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", count)
    try:
        outcomes = declare_many(
            runtime,
            org_id,
            [Submission(fresh_ceb621(), "application/xml", f"one-tx-{n}") for n in range(20)],
        )
    finally:
        event.remove(runtime.engine, "before_cursor_execute", count)
    assert all(not isinstance(o, GatewayError) for o in outcomes)
    assert len(inserts) == 1
    with runtime.engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(t.declarations)).scalar_one() == 20


class _UnpluggedAfter:
    """The organisation's key ring, its token pulled out after ``n`` signatures."""

    def __init__(self, keys: Any, n: int) -> None:
        self.keys, self.left = keys, n

    def signer_for(self, org_id: str) -> Any:
        if self.left == 0:
            raise SigningFailed("the USB key was removed")
        self.left -= 1
        return self.keys.signer_for(org_id)


def test_a_lot_stops_at_an_unplugged_key_and_a_retry_finishes_it(runtime: Runtime, org_id: str):
    subs = [Submission(fresh_ceb621(), "application/xml", f"unplug-{n}") for n in range(6)]
    flaky = replace(runtime, keys=_UnpluggedAfter(runtime.keys, 3))
    first = declare_many(flaky, org_id, subs)
    assert len(first) == 4 and isinstance(first[-1], SigningFailed)
    assert not any(isinstance(o, GatewayError) for o in first[:3])
    assert _stored(runtime)["counts"]["messages"] == 3  # what was signed before is kept
    again = declare_many(runtime, org_id, subs)
    assert [o.replayed for o in again] == [True] * 3 + [False] * 3
    assert [o.message_id for o in again[:3]] == [o.message_id for o in first[:3]]
    assert _stored(runtime)["counts"]["messages"] == 6
