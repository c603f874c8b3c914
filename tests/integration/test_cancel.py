"""Cancel an accepted inventory list (CEB623): built from what the gateway holds, declared,
and the list is cancelled when customs accepts the cancellation (CEB624)."""

from __future__ import annotations

import pytest
from lxml import etree

from adapters.dxp import Envelope, build_envelope
from gateway.domain.errors import BusinessRuleViolation, DuplicateDeclaration
from gateway.examples import fresh_ceb621
from gateway.persistence import repository as repo
from gateway.provisioning import sandbox_key_paths
from gateway.services.cancel import cancel
from gateway.services.declare import declare
from gateway.services.receipts import record_receipts
from gateway.services.runtime import Runtime
from gateway.settings import Settings
from sandbox.receipts import build_reply
from signing import load_signing_key, sign_enveloped
from tests.integration.test_receipts import _receipt


def _cancel_receipt(settings: Settings, guid: str, code: str) -> bytes:
    root = build_reply(
        "CEB624",
        {
            "guid": guid,
            "customsCode": "4601",
            "copNo": "COP1",
            "preNo": "B20261123000000001",
            "invtNo": "46012026I000000001",
            "returnStatus": code,
            "returnTime": "20261123120000999",
            "returnInfo": "撤销申请通过 / cancellation accepted",
        },
    )
    sign_enveloped(root, load_signing_key(*sandbox_key_paths(settings, "customs")))
    return build_envelope(
        Envelope("R-C" + code, settings.customs_dxp_id, ("x",), "CEB624", etree.tostring(root))
    )


def _status(runtime: Runtime, declaration_id: str) -> str:
    with runtime.engine.connect() as conn:
        return str(repo.get_declaration(conn, declaration_id)["status"])


def test_an_accepted_list_is_cancelled_once_customs_accepts_the_cancellation(
    settings: Settings, runtime: Runtime, org_id: str
):
    acc = declare(runtime, org_id, fresh_ceb621(), "application/xml")
    did, guid = acc.declarations[0].id, acc.declarations[0].doc_guid
    with pytest.raises(BusinessRuleViolation) as early:
        cancel(runtime, org_id, did, "buyer changed their mind")
    assert early.value.violations[0].code == "cancel.not_accepted_yet"

    for code in ("2", "120"):
        record_receipts(runtime, _receipt(settings, guid, code))
    request = cancel(runtime, org_id, did, "消费者取消订单 / order cancelled by the buyer")
    assert request.message_type == "CEB623"
    with pytest.raises(DuplicateDeclaration):
        cancel(runtime, org_id, did, "again")
    assert _status(runtime, did) == "under_review"

    cancel_guid = request.declarations[0].doc_guid
    record_receipts(runtime, _cancel_receipt(settings, cancel_guid, "2"))
    assert _status(runtime, did) == "under_review"
    record_receipts(runtime, _cancel_receipt(settings, cancel_guid, "120"))
    assert _status(runtime, did) == "cancelled"
    with runtime.engine.connect() as conn:
        kinds = [e["kind"] for e in repo.events_of(conn, did)]
    assert "cancel_requested" in kinds and kinds[-1] == "cancelled"
    # a late 800 for the cancelled list changes nothing
    record_receipts(runtime, _receipt(settings, guid, "800"))
    assert _status(runtime, did) == "cancelled"


def test_only_inventory_lists_can_be_cancelled(settings: Settings, runtime: Runtime, org_id: str):
    from gateway.examples import fresh_parcel

    order = declare(runtime, org_id, fresh_parcel()["CEB311"], "application/xml")
    with pytest.raises(BusinessRuleViolation) as err:
        cancel(runtime, org_id, order.declarations[0].id, "no")
    assert err.value.violations[0].code == "cancel.not_an_inventory"
