"""Found by T1 on PostgreSQL: a worker recording a send re-derived the status from a plain
read while a receipt was committing, then wrote "submitted" over the receipt's
"under_review" (a transition the state machine forbids). The status is derived under the
declaration's lock now (skipped when Debian's PostgreSQL binaries are not installed)."""

from __future__ import annotations

import threading
import time

from sqlalchemy import update

from gateway.domain.statuses import Phase
from gateway.examples import fresh_ceb621
from gateway.persistence import repository as repo
from gateway.persistence import tables as t
from gateway.services.declare import declare
from gateway.services.status import refresh_status


def test_a_send_recorded_while_a_receipt_commits_does_not_undo_the_receipts_status(pg):
    _settings, rt, org_id = pg
    did = declare(rt, org_id, fresh_ceb621(), "application/xml").declarations[0].id
    with rt.engine.begin() as conn:
        decl = repo.get_declaration(conn, did)
        assert decl is not None and decl["status"] == "accepted"
        # Every dispatch sent: on its own, recording the last send would mean "submitted".
        conn.execute(
            update(t.dispatches)
            .where(t.dispatches.c.message_id == decl["message_id"])
            .values(state="sent")
        )
    # The receipt: holds the declaration's lock, customs has stored it, not committed yet.
    receipt = rt.engine.connect()
    tx = receipt.begin()
    repo.get_declaration(receipt, did, for_update=True)
    repo.update_authority_status(receipt, did, "customs", phase=int(Phase.STORED), code="120")
    repo.update_declaration(receipt, did, status="under_review")
    derived: list[str] = []

    def record_send() -> None:
        with rt.engine.begin() as conn:
            derived.append(refresh_status(conn, rt, decl, source="customs", at=repo.now(), ring=[]))

    worker = threading.Thread(target=record_send)
    worker.start()
    time.sleep(0.5)  # the worker is waiting for the receipt's lock
    tx.commit()
    receipt.close()
    worker.join(10)
    with rt.engine.connect() as conn:
        after = repo.get_declaration(conn, did)
    assert after is not None and after["status"] == "under_review"
    assert derived == ["under_review"]
