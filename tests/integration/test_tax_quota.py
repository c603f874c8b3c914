"""Tax and the annual quota: estimated on acceptance, counted on release, restored on
cancellation, and customs' tax bill kept next to the estimate."""

from __future__ import annotations

import re
import uuid
from decimal import Decimal

import pytest
from lxml import etree
from sqlalchemy import select

from adapters.dxp import Envelope, build_envelope
from gateway.domain.errors import BusinessRuleViolation
from gateway.examples import fresh_ceb621
from gateway.persistence import repository as repo
from gateway.persistence import tables as t
from gateway.provisioning import sandbox_key_paths
from gateway.services.declare import declare
from gateway.services.receipts import record_receipts
from gateway.services.runtime import Runtime
from gateway.settings import Settings
from sandbox.receipts import tax_bill_message
from sandbox.tax import tax_bill
from signing import load_signing_key, sign_enveloped
from tests.integration.test_cancel import _cancel_receipt
from tests.integration.test_receipts import _receipt

BUYER = "11010519491231002X"


@pytest.fixture
def routing() -> dict[str, str]:
    # Customs only, and a small annual quota so two parcels of ~526 CNY cross it.
    return {"inspection_hs_prefixes": "", "port_message_types": "", "annual_quota": "800"}


def _decl(runtime: Runtime, declaration_id: str) -> dict:
    with runtime.engine.connect() as conn:
        return dict(repo.get_declaration(conn, declaration_id))


def _released(settings: Settings, runtime: Runtime, org_id: str) -> dict:
    acc = declare(runtime, org_id, fresh_ceb621(buyer_id=BUYER), "application/xml")
    for code in ("2", "120", "800"):
        record_receipts(runtime, _receipt(settings, acc.declarations[0].doc_guid, code))
    return _decl(runtime, acc.declarations[0].id)


def test_the_estimate_is_kept_and_the_buyer_is_never_stored_in_clear(
    settings: Settings, runtime: Runtime, org_id: str
):
    acc = declare(runtime, org_id, fresh_ceb621(buyer_id=BUYER), "application/xml")
    decl = _decl(runtime, acc.declarations[0].id)
    estimate = decl["tax"]["estimate"]
    # 396.00 infant formula + 120.00 cream, freight 10.00 apportioned: VAT at 13 % x 70 %
    assert Decimal(estimate["total"]) > 0
    assert len(estimate["lines"]) == 2
    assert decl["buyer_key"] and BUYER not in decl["buyer_key"]
    assert len(decl["buyer_key"]) == 64


def test_the_quota_counts_on_release_refuses_beyond_and_comes_back_on_cancel(
    settings: Settings, runtime: Runtime, org_id: str
):
    first = _released(settings, runtime, org_id)
    assert first["status"] == "released"
    with runtime.engine.connect() as conn:
        ledger = conn.execute(select(t.quota_ledger)).mappings().all()
    assert [(r["kind"], r["declaration_id"]) for r in ledger] == [("release", first["id"])]

    with pytest.raises(BusinessRuleViolation) as err:
        declare(runtime, org_id, fresh_ceb621(buyer_id=BUYER), "application/xml")
    problem = err.value.violations[0]
    assert problem.code == "rule.quota.annual_limit"
    assert problem.path.endswith("/InventoryHead/buyerIdNumber") and problem.message_zh

    from gateway.services.cancel import cancel

    request = cancel(runtime, org_id, first["id"], "returned to the seller before gate-out")
    record_receipts(runtime, _cancel_receipt(settings, request.declarations[0].doc_guid, "120"))
    assert _decl(runtime, first["id"])["status"] == "cancelled"
    again = declare(runtime, org_id, fresh_ceb621(buyer_id=BUYER), "application/xml")
    assert again.declarations[0].status == "accepted"


def test_customs_tax_bill_is_kept_next_to_the_estimate(
    settings: Settings, runtime: Runtime, org_id: str
):
    decl = _released(settings, runtime, org_id)
    head = {
        "invtNo": decl["invt_no"],
        "customsCode": "4601",
        "agentCode": "1105910159",
        "ebcCode": "1101110325",
        "logisticsCode": "1101180326",
        "assureCode": "1105910159",
    }
    lines = [
        {"gnum": "1", "gcode": "1901101000", "totalPrice": "396.00"},
        {"gnum": "2", "gcode": "3304990099", "totalPrice": "120.00"},
    ]
    bill = tax_bill(decl["invt_no"], lines)
    root = tax_bill_message(bill, head, "20261123120000123")
    sign_enveloped(root, load_signing_key(*sandbox_key_paths(settings, "customs")))
    body = build_envelope(
        Envelope(uuid.uuid4().hex, settings.customs_dxp_id, ("x",), "CEB816", etree.tostring(root))
    )
    assert record_receipts(runtime, body).applied == 1
    assert record_receipts(runtime, body).duplicates == 1
    kept = _decl(runtime, decl["id"])["tax"]
    assert kept["estimate"] and kept["bill"]["taxNo"] == bill.tax_no
    with runtime.engine.connect() as conn:
        events = [e for e in repo.events_of(conn, decl["id"]) if e["kind"] == "tax_bill"]
    assert len(events) == 1 and re.search(r"\d+\.\d\d CNY", events[0]["info"])
