"""The hot path reads by index: no statement of declaring (one by one or in bulk),
delivering or applying receipts scans a table that grows with traffic. A scan costs
nothing in a small test database and dominates a busy one (every receipt once read the
whole outbox, signed payloads included), so it is caught here by SQLite's own query plans,
not by timing."""

from __future__ import annotations

import sqlite3
from typing import Any

from sqlalchemy import event

from gateway.examples import fresh_ceb621
from gateway.persistence import repository as repo
from gateway.services.declare_many import Submission, declare_many
from gateway.services.deliver import deliver
from gateway.services.receipts import record_receipts
from gateway.services.runtime import Runtime
from gateway.settings import Settings
from tests.integration.test_packed_receipts import _declared, _packed

# Tables that grow with every declaration, receipt or event.
GROWING = {
    "messages",
    "declarations",
    "authority_statuses",
    "events",
    "dispatches",
    "receipts",
    "port_events",
    "inbound_messages",
    "quota_ledger",
    "audit_log",
    "declaration_numbers",
    "declaration_parties",
    "batch_items",
    "webhook_deliveries",
}


def _statements(runtime: Runtime) -> tuple[list[str], Any]:
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement not in seen:
            seen.append(statement)

    event.listen(runtime.engine, "before_cursor_execute", record)
    return seen, record


def _scans(db: str, statement: str) -> list[str]:
    """The tables a statement reads whole, from SQLite's plan for it."""
    conn = sqlite3.connect(db)
    try:
        plan = conn.execute(
            "EXPLAIN QUERY PLAN " + statement, [None] * statement.count("?")
        ).fetchall()
    finally:
        conn.close()
    out = []
    for row in plan:
        detail = str(row[3])
        if detail.startswith("SCAN "):
            table = detail.split()[1]
            if table in GROWING:
                out.append(detail)
    return out


def test_declaring_delivering_and_applying_receipts_never_scan_a_growing_table(
    settings: Settings, runtime: Runtime, org_id: str
):
    seen, record = _statements(runtime)
    try:
        docs = _declared(runtime, org_id, 3)
        with runtime.engine.connect() as conn:
            dispatches = repo.due_dispatch_ids(conn, repo.now(), 10)
        assert dispatches
        for dispatch_id in dispatches:  # no authority listens here: a retry is recorded
            assert deliver(runtime, dispatch_id).result == "retry"
        # A bulk upload's lot: its screen and writes, and a lot run again (replays).
        lot = [Submission(fresh_ceb621(), "application/xml", f"plan-{n}") for n in range(3)]
        assert declare_many(runtime, org_id, lot) and declare_many(runtime, org_id, lot)
        codes = [(guid, code) for code in ("2", "120", "800") for _, guid in docs]
        outcome = record_receipts(runtime, _packed(settings, codes))
        assert outcome.applied == 9
        assert record_receipts(runtime, _packed(settings, codes)).duplicates == 9
    finally:
        event.remove(runtime.engine, "before_cursor_execute", record)
    db = runtime.engine.url.database
    assert db and len(seen) > 20
    written = ("SELECT", "UPDATE", "DELETE", "INSERT")
    scans = {s: f for s in seen if s.lstrip().upper().startswith(written) and (f := _scans(db, s))}
    assert scans == {}
