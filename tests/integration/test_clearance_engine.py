"""Inspect once, release once, and the port's part (运抵验放), through the real services."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from lxml import etree
from sqlalchemy import insert, select
from sqlalchemy.exc import IntegrityError

from adapters.dxp import Envelope, build_envelope
from gateway.examples import fresh_ceb621
from gateway.persistence import repository as repo
from gateway.persistence import tables as t
from gateway.provisioning import sandbox_key_paths
from gateway.services.declare import declare
from gateway.services.port_events import record_port_events
from gateway.services.receipts import record_receipts
from gateway.services.runtime import Runtime
from gateway.settings import Settings
from gateway.xml.validation import detect, schema_violations
from schemas.registry import PORT_NS
from signing import TrustStore, load_signing_key, sign_enveloped, verify_enveloped
from tests.integration.test_receipts import _receipt


@pytest.fixture
def routing() -> dict[str, str]:
    """Infant formula (HS 1901) goes to inspection; inventory lists go to the port."""
    return {"inspection_hs_prefixes": "19,33", "port_message_types": "CEB621"}


def _arrival(settings: Settings, logistics_no: str, kind: str = "Arrival") -> bytes:
    q = f"{{{PORT_NS}}}"
    root = etree.Element(
        f"{q}{kind}", nsmap={"port": PORT_NS}, id=str(uuid.uuid4()).upper(), version="1.0"
    )
    etree.SubElement(root, f"{q}portCode").text = "4601"
    c = etree.SubElement(root, f"{q}Consignment")
    etree.SubElement(c, f"{q}logisticsNo").text = logistics_no
    stamp = "arrivedAt" if kind == "Arrival" else "gateOutAt"
    etree.SubElement(c, f"{q}{stamp}").text = datetime.now(UTC).isoformat()
    sign_enveloped(root, load_signing_key(*sandbox_key_paths(settings, "port")))
    return build_envelope(
        Envelope(
            "P-" + uuid.uuid4().hex,
            settings.port_dxp_id,
            ("x",),
            f"Port{kind}",
            etree.tostring(root),
        )
    )


def _declared(runtime: Runtime, org_id: str) -> dict:
    acc = declare(runtime, org_id, fresh_ceb621(), "application/xml")
    with runtime.engine.connect() as conn:
        return dict(repo.get_declaration(conn, acc.declarations[0].id))


def _decl(runtime: Runtime, declaration_id: str) -> dict:
    with runtime.engine.connect() as conn:
        return dict(repo.get_declaration(conn, declaration_id))


def _dispatches(runtime: Runtime, **where: str) -> list[dict]:
    with runtime.engine.connect() as conn:
        stmt = select(t.dispatches)
        for column, value in where.items():
            stmt = stmt.where(t.dispatches.c[column] == value)
        return [dict(r) for r in conn.execute(stmt).mappings()]


def test_a_food_inventory_goes_to_customs_inspection_and_a_manifest_to_the_port(
    settings: Settings, runtime: Runtime, org_id: str
):
    decl = _declared(runtime, org_id)
    kinds = sorted((d["authority"], d["kind"]) for d in _dispatches(runtime))
    assert kinds == [
        ("customs", "declaration"),
        ("inspection", "declaration"),
        ("port", "manifest"),
    ]
    assert decl["routes"] == ["customs", "inspection", "port"]
    (manifest,) = _dispatches(runtime, kind="manifest")
    root = etree.fromstring(manifest["payload"])
    assert schema_violations(root, detect(root)) == []
    gateway_cert = TrustStore.from_pem_files([settings.keys_path / "gateway.crt"])
    verified = verify_enveloped(root, gateway_cert)
    assert verified.root.findtext(f".//{{{PORT_NS}}}logisticsNo") == decl["logistics_no"]
    assert verified.root.findtext(f".//{{{PORT_NS}}}advance") == "true"


def test_both_authorities_selecting_open_one_joint_inspection_and_release_waits_for_arrival(
    settings: Settings, runtime: Runtime, org_id: str
):
    decl = _declared(runtime, org_id)
    guid, did = decl["doc_guid"], decl["id"]
    for code in ("2", "120", "500"):
        record_receipts(runtime, _receipt(settings, guid, code))
    record_receipts(runtime, _receipt(settings, guid, "120", authority="inspection"))
    record_receipts(runtime, _receipt(settings, guid, "500", authority="inspection"))
    with runtime.engine.connect() as conn:
        inspections = conn.execute(select(t.joint_inspections)).mappings().all()
    assert len(inspections) == 1
    assert sorted(inspections[0]["requested_by"]) == ["customs", "inspection"]
    assert _decl(runtime, did)["status"] == "inspection"

    record_receipts(runtime, _receipt(settings, guid, "800"))
    assert _decl(runtime, did)["status"] == "inspection"  # inspection has not reported yet
    record_receipts(runtime, _receipt(settings, guid, "800", authority="inspection"))
    assert _decl(runtime, did)["status"] == "under_review"  # cleared, waiting for arrival
    assert _dispatches(runtime, kind="release") == []

    record_port_events(runtime, _arrival(settings, decl["logistics_no"]))
    released = _decl(runtime, did)
    assert released["status"] == "released" and released["arrived_at"] is not None
    (release,) = _dispatches(runtime, kind="release")
    body = etree.fromstring(release["payload"])
    assert sorted(x.text for x in body.iter(f"{{{PORT_NS}}}clearedBy")) == ["customs", "inspection"]
    with runtime.engine.connect() as conn:
        (inspection,) = conn.execute(select(t.joint_inspections)).mappings().all()
        kinds = [e["kind"] for e in repo.events_of(conn, did)]
    assert inspection["closed_at"] is not None and set(inspection["results"]) == {
        "customs",
        "inspection",
    }
    assert kinds.count("inspection_open") == 1 and kinds.count("inspection_join") == 1
    assert kinds.count("release_queued") == 1


def test_a_selection_after_the_inspection_completed_reopens_the_same_joint_inspection(
    settings: Settings, runtime: Runtime, org_id: str
):
    decl = _declared(runtime, org_id)
    guid, did = decl["doc_guid"], decl["id"]
    for code in ("120", "500", "800"):
        record_receipts(runtime, _receipt(settings, guid, code, authority="inspection"))
    with runtime.engine.connect() as conn:
        (done,) = conn.execute(select(t.joint_inspections)).mappings().all()
    assert done["closed_at"] is not None

    for code in ("2", "120", "500"):
        record_receipts(runtime, _receipt(settings, guid, code))
    with runtime.engine.connect() as conn:
        (reopened,) = conn.execute(select(t.joint_inspections)).mappings().all()
        joined = [e for e in repo.events_of(conn, did) if e["kind"] == "inspection_join"]
    assert reopened["id"] == done["id"] and reopened["closed_at"] is None
    assert sorted(reopened["requested_by"]) == ["customs", "inspection"]
    assert "reopened" in joined[0]["info"]

    record_receipts(runtime, _receipt(settings, guid, "800"))
    with runtime.engine.connect() as conn:
        (closed,) = conn.execute(select(t.joint_inspections)).mappings().all()
    assert closed["closed_at"] is not None and set(closed["results"]) == {"customs", "inspection"}


def test_release_is_queued_once_whatever_arrives_again(
    settings: Settings, runtime: Runtime, org_id: str
):
    decl = _declared(runtime, org_id)
    record_port_events(runtime, _arrival(settings, decl["logistics_no"]))
    for authority in ("customs", "inspection"):
        record_receipts(runtime, _receipt(settings, decl["doc_guid"], "800", authority=authority))
    record_receipts(runtime, _receipt(settings, decl["doc_guid"], "800"))  # duplicate
    record_receipts(runtime, _receipt(settings, decl["doc_guid"], "899"))  # closes customs
    record_port_events(runtime, _arrival(settings, decl["logistics_no"]))  # a second arrival
    assert len(_dispatches(runtime, kind="release")) == 1
    with pytest.raises(IntegrityError), runtime.engine.begin() as conn:
        conn.execute(
            insert(t.dispatches).values(
                id="dsp_second",
                message_id=decl["message_id"],
                authority="port",
                kind="release",
                declaration_id=decl["id"],
                state="pending",
                attempts=0,
                next_attempt_at=repo.now(),
                created_at=repo.now(),
            )
        )


def test_an_arrival_before_the_declaration_counts_and_gate_out_closes(
    settings: Settings, runtime: Runtime, org_id: str
):
    body = fresh_ceb621()
    logistics_no = etree.fromstring(body).findtext(
        ".//{http://www.chinaport.gov.cn/ceb}logisticsNo"
    )
    early = record_port_events(runtime, _arrival(settings, logistics_no))
    assert early.unmatched == [logistics_no]
    acc = declare(runtime, org_id, body, "application/xml")
    did = acc.declarations[0].id
    assert _decl(runtime, did)["arrived_at"] is not None
    guid = acc.declarations[0].doc_guid
    for authority in ("customs", "inspection"):
        record_receipts(runtime, _receipt(settings, guid, "800", authority=authority))
    assert _decl(runtime, did)["status"] == "released"
    (manifest,) = _dispatches(runtime, kind="manifest")
    assert b"<port:advance>false</port:advance>" in manifest["payload"]
    record_port_events(runtime, _arrival(settings, logistics_no, kind="GateOut"))
    closed = _decl(runtime, did)
    assert closed["status"] == "closed" and closed["gate_out_at"] is not None


def test_a_port_event_signed_by_someone_else_is_refused(
    settings: Settings, runtime: Runtime, tmp_path
):
    from gateway.domain.errors import ReceiptRejected
    from signing import generate_test_identity

    generate_test_identity("Fake port", tmp_path / "f.key", tmp_path / "f.crt")
    body = _arrival(settings, "LN-FAKE")
    env = etree.fromstring(body)
    data = env.find("{http://www.chinaport.gov.cn/dxp}Data")
    import base64

    inner = etree.fromstring(base64.b64decode(data.text))
    inner.remove(inner[-1])
    sign_enveloped(inner, load_signing_key(tmp_path / "f.key", tmp_path / "f.crt"))
    data.text = base64.b64encode(etree.tostring(inner)).decode()
    with pytest.raises(ReceiptRejected) as err:
        record_port_events(runtime, etree.tostring(env))
    assert err.value.violations[0].code == "signature.untrusted"
