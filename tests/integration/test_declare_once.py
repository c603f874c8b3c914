"""Declare once: a business document is declared once; a change only before acceptance."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest

from gateway.domain.errors import BusinessRuleViolation, DuplicateDeclaration
from gateway.examples import fresh_ceb621
from gateway.persistence import repository as repo
from gateway.services.declare import declare
from gateway.services.receipts import record_receipts
from gateway.services.runtime import Runtime
from gateway.settings import Settings
from tests.integration.test_receipts import _receipt


def _inventory(cop_no: str, app_type: str = "1") -> bytes:
    text = fresh_ceb621().decode()
    text = re.sub(r"<ceb:copNo>[^<]*</ceb:copNo>", f"<ceb:copNo>{cop_no}</ceb:copNo>", text)
    text = text.replace("<ceb:appType>1</ceb:appType>", f"<ceb:appType>{app_type}</ceb:appType>")
    return text.encode()


def _status(runtime: Runtime, declaration_id: str) -> str:
    with runtime.engine.connect() as conn:
        row = repo.get_declaration(conn, declaration_id)
    assert row is not None
    return str(row["status"])


def test_the_same_inventory_in_a_new_message_is_a_duplicate(runtime: Runtime, org_id: str):
    first = declare(runtime, org_id, _inventory("COP-A"), "application/xml")
    with pytest.raises(DuplicateDeclaration) as err:
        declare(runtime, org_id, _inventory("COP-A"), "application/xml")
    assert err.value.violations[0].code == "document.duplicate_business_key"
    assert err.value.violations[0].path == "/CEB621Message/Inventory[1]/InventoryHead/copNo"
    assert err.value.extra["existing_declaration_id"] == first.declarations[0].id


def test_a_change_before_acceptance_supersedes_the_original(runtime: Runtime, org_id: str):
    first = declare(runtime, org_id, _inventory("COP-B"), "application/xml")
    change = declare(runtime, org_id, _inventory("COP-B", app_type="2"), "application/xml")
    assert change.declarations[0].status == "accepted"
    assert _status(runtime, first.declarations[0].id) == "cancelled"
    with runtime.engine.connect() as conn:
        kinds = [e["kind"] for e in repo.events_of(conn, first.declarations[0].id)]
    assert kinds[-1] == "superseded"


def test_a_change_after_customs_accepted_is_refused(
    settings: Settings, runtime: Runtime, org_id: str
):
    first = declare(runtime, org_id, _inventory("COP-C"), "application/xml")
    record_receipts(runtime, _receipt(settings, first.declarations[0].doc_guid, "120"))
    with pytest.raises(BusinessRuleViolation) as err:
        declare(runtime, org_id, _inventory("COP-C", app_type="2"), "application/xml")
    assert err.value.violations[0].code == "rule.change.after_acceptance"
    assert "CEB623" in err.value.violations[0].message
    assert _status(runtime, first.declarations[0].id) == "under_review"


def test_a_change_of_nothing_is_refused(runtime: Runtime, org_id: str):
    with pytest.raises(BusinessRuleViolation) as err:
        declare(runtime, org_id, _inventory("COP-NONE", app_type="2"), "application/xml")
    assert err.value.violations[0].code == "rule.change.unknown"


def test_after_a_rejection_the_document_may_be_declared_again(
    settings: Settings, runtime: Runtime, org_id: str
):
    first = declare(runtime, org_id, _inventory("COP-D"), "application/xml")
    record_receipts(runtime, _receipt(settings, first.declarations[0].doc_guid, "100"))
    again = declare(runtime, org_id, _inventory("COP-D"), "application/xml")
    assert again.declarations[0].status == "accepted"


def test_concurrent_twins_are_declared_once(runtime: Runtime, org_id: str):
    import threading

    bodies = [_inventory("COP-RACE") for _ in range(6)]
    outcomes: list[str] = []
    barrier = threading.Barrier(len(bodies))

    def submit(body: bytes) -> None:
        barrier.wait()
        try:
            declare(runtime, org_id, body, "application/xml")
            outcomes.append("accepted")
        except DuplicateDeclaration:
            outcomes.append("duplicate")

    threads = [threading.Thread(target=submit, args=(b,)) for b in bodies]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sorted(outcomes) == ["accepted"] + ["duplicate"] * 5


def test_a_waybill_number_may_be_reused_after_six_months_but_not_before(
    runtime: Runtime, org_id: str
):
    from datetime import timedelta

    from sqlalchemy import update

    from gateway.examples import fresh_parcel
    from gateway.persistence import tables as t

    waybill = fresh_parcel()["CEB511"]
    first = declare(runtime, org_id, waybill, "application/xml")
    again = re.sub(rb'guid="[^"]+"', b'guid="%s"' % str(uuid.uuid4()).upper().encode(), waybill)
    again = re.sub(
        rb"<ceb:guid>[^<]+</ceb:guid>",
        b"<ceb:guid>%s</ceb:guid>" % str(uuid.uuid4()).upper().encode(),
        again,
    )
    with pytest.raises(DuplicateDeclaration):
        declare(runtime, org_id, again, "application/xml")
    with runtime.engine.begin() as conn:  # seven months later
        conn.execute(
            update(t.declarations)
            .where(t.declarations.c.id == first.declarations[0].id)
            .values(created_at=repo.now() - timedelta(days=210))
        )
    reused = declare(runtime, org_id, again, "application/xml")
    assert reused.declarations[0].status == "accepted"
    with runtime.engine.connect() as conn:
        kinds = [e["kind"] for e in repo.events_of(conn, first.declarations[0].id)]
    assert kinds[-1] == "key_released"


def test_the_same_document_twice_in_one_message_is_a_422_not_a_crash(runtime: Runtime, org_id: str):
    text = re.sub(r"<ceb:copNo>[^<]*", "<ceb:copNo>COP-TWICE", fresh_ceb621(2).decode())
    with pytest.raises(BusinessRuleViolation) as err:
        declare(runtime, org_id, text.encode(), "application/xml")
    assert [v.code for v in err.value.violations] == ["rule.document.duplicate_business_key"]
    assert err.value.violations[0].path == "/CEB621Message/Inventory[2]/InventoryHead/copNo"


def test_a_twin_with_the_same_key_that_commits_first_is_answered_as_a_replay(
    runtime: Runtime, org_id: str, monkeypatch: pytest.MonkeyPatch
):
    """Found by the fault suite's concurrent twins: a twin with the same Idempotency-Key
    committed after this submission looked for a replay and before its transaction, and the
    submission was answered 409 'already declared' instead of the twin's declarations."""
    from gateway.services import declare as declare_module

    body, key = _inventory("COP-TWIN"), "twin-key-1"
    real_prematch = declare_module.prematch
    twin: list[Any] = []

    def prematch_then_twin(*args: Any, **kwargs: Any) -> Any:
        result = real_prematch(*args, **kwargs)
        if not twin:  # the twin slips in between the replay lookup and the transaction
            twin.append(None)
            twin[0] = declare(runtime, org_id, body, "application/xml", key)
        return result

    monkeypatch.setattr(declare_module, "prematch", prematch_then_twin)
    answer = declare(runtime, org_id, body, "application/xml", key)
    assert answer.replayed
    assert [d.id for d in answer.declarations] == [d.id for d in twin[0].declarations]
