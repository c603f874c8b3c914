"""Receipts: verified before use, applied once, never moving a declaration backwards."""

from __future__ import annotations

import base64

import pytest
from lxml import etree
from sqlalchemy import select

from adapters.dxp import Envelope, build_envelope
from gateway.domain.errors import ReceiptRejected
from gateway.examples import fresh_ceb621
from gateway.persistence import repository as repo
from gateway.persistence import tables as t
from gateway.provisioning import sandbox_key_paths
from gateway.services.declare import declare
from gateway.services.receipts import record_receipts
from gateway.services.runtime import Runtime
from gateway.settings import Settings
from sandbox.receipts import inventory_return
from signing import generate_test_identity, load_signing_key, sign_enveloped


def _receipt(
    settings: Settings,
    guid: str,
    code: str,
    *,
    key=None,
    info: str = "ok",
    authority: str = "customs",
) -> bytes:
    root = inventory_return(
        {
            "guid": guid,
            "copNo": "COP1",
            "preNo": "B20261123000000001",
            "invtNo": "46012026I000000001" if code != "2" else "",
            "returnStatus": code,
            "returnTime": f"20261123120000{code:0>3}",
            "returnInfo": info,
        }
    )
    sign_enveloped(root, key or load_signing_key(*sandbox_key_paths(settings, authority)))
    return build_envelope(
        Envelope(
            "R-" + code,
            getattr(settings, f"{authority}_dxp_id"),
            (settings.demo_org_dxp_id,),
            "CEB622",
            etree.tostring(root),
        )
    )


def _declared(runtime: Runtime, org_id: str) -> tuple[str, str]:
    acc = declare(runtime, org_id, fresh_ceb621(), "application/xml")
    return acc.declarations[0].id, acc.declarations[0].doc_guid


def _state(runtime: Runtime, declaration_id: str) -> tuple[str, list[str]]:
    with runtime.engine.connect() as conn:
        decl = repo.get_declaration(conn, declaration_id)
        events = repo.events_of(conn, declaration_id)
    assert decl is not None
    return decl["status"], [f"{e['kind']}:{e['code']}" for e in events]


def test_receipts_advance_the_declaration_and_a_duplicate_changes_nothing(
    settings: Settings, runtime: Runtime, org_id: str
):
    did, guid = _declared(runtime, org_id)
    for code in ("2", "120", "800"):
        outcome = record_receipts(runtime, _receipt(settings, guid, code))
        assert outcome.applied == 1
    before = _state(runtime, did)
    again = record_receipts(runtime, _receipt(settings, guid, "800"))
    assert (again.applied, again.duplicates) == (0, 1)
    assert _state(runtime, did) == before
    assert before[0] == "released"


def test_signxml_can_be_chosen_to_check_receipts_and_an_unknown_check_stops_the_start(
    settings: Settings, org_id: str, capsys
):
    from dataclasses import replace

    from gateway.bootstrap import build_runtime
    from gateway.launcher import run

    rt = build_runtime(replace(settings, verify_engine="signxml"))
    assert rt.verify_engine == "signxml"
    did, guid = _declared(rt, org_id)
    assert record_receipts(rt, _receipt(settings, guid, "800")).applied == 1
    assert _state(rt, did)[0] == "released"
    assert run(replace(settings, verify_engine="xmlsec")) == 1  # before any process
    assert "error: GATEWAY_VERIFY_ENGINE: 'xmlsec' is not one of lean, signxml" in (
        capsys.readouterr().err
    )


def test_a_late_receipt_is_recorded_but_does_not_move_the_declaration_back(
    settings: Settings, runtime: Runtime, org_id: str
):
    did, guid = _declared(runtime, org_id)
    record_receipts(runtime, _receipt(settings, guid, "800"))
    late = record_receipts(runtime, _receipt(settings, guid, "120"))
    status, events = _state(runtime, did)
    assert late.stale == 1 and status == "released"
    assert [e for e in events if e.startswith("receipt")][-2:] == ["receipt:800", "receipt:120"]
    with runtime.engine.connect() as conn:
        decl = conn.execute(select(t.declarations)).mappings().one()
    assert decl["invt_no"] == "46012026I000000001"


def test_a_rejection_carries_its_reason_to_the_broker(
    settings: Settings, runtime: Runtime, org_id: str
):
    did, guid = _declared(runtime, org_id)
    record_receipts(runtime, _receipt(settings, guid, "100", info="订购人身份信息校验不通过"))
    with runtime.engine.connect() as conn:
        (row,) = repo.authority_rows(conn, did)
    assert _state(runtime, did)[0] == "rejected"
    assert row["code"] == "100" and "订购人身份信息校验不通过" in row["info"]


def test_a_receipt_signed_by_an_unknown_key_is_refused_and_changes_nothing(
    settings: Settings, runtime: Runtime, org_id: str, tmp_path
):
    did, guid = _declared(runtime, org_id)
    generate_test_identity("Impostor", tmp_path / "x.key", tmp_path / "x.crt")
    forged = _receipt(
        settings, guid, "800", key=load_signing_key(tmp_path / "x.key", tmp_path / "x.crt")
    )
    with pytest.raises(ReceiptRejected) as err:
        record_receipts(runtime, forged)
    assert err.value.violations[0].code == "signature.untrusted"
    assert _state(runtime, did)[0] == "accepted"


def test_a_tampered_receipt_is_refused(settings: Settings, runtime: Runtime, org_id: str):
    _did, guid = _declared(runtime, org_id)
    body = _receipt(settings, guid, "100")
    env = etree.fromstring(body)
    data = env.find("{http://www.chinaport.gov.cn/dxp}Data")

    inner = base64.b64decode(data.text).replace(b">100<", b">800<")
    data.text = base64.b64encode(inner).decode()
    with pytest.raises(ReceiptRejected) as err:
        record_receipts(runtime, etree.tostring(env))
    assert err.value.violations[0].code == "signature.digest_mismatch"


def test_a_receipt_from_an_unknown_sender_is_refused(settings: Settings, runtime: Runtime):
    root = inventory_return(
        {
            "guid": "X" * 36,
            "copNo": "C",
            "preNo": "B" * 18,
            "returnStatus": "2",
            "returnTime": "2" * 17,
            "returnInfo": "x",
        }
    )
    body = build_envelope(Envelope("R", "DXPUNKNOWN", ("x",), "CEB622", etree.tostring(root)))
    with pytest.raises(ReceiptRejected) as err:
        record_receipts(runtime, body)
    assert err.value.violations[0].code == "receipt.unknown_sender"


def test_the_same_receipt_delivered_concurrently_is_applied_once(
    settings: Settings, runtime: Runtime, org_id: str
):
    import threading

    did, guid = _declared(runtime, org_id)
    body = _receipt(settings, guid, "120")
    outcomes = []
    barrier = threading.Barrier(6)

    def deliver() -> None:
        barrier.wait()
        outcomes.append(record_receipts(runtime, body))

    threads = [threading.Thread(target=deliver) for _ in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert sum(o.applied for o in outcomes) == 1
    assert sum(o.duplicates for o in outcomes) == 5
    assert _state(runtime, did)[1].count("receipt:120") == 1


def test_a_receipt_signed_with_a_revoked_certificate_is_refused_once_it_is_listed(
    settings: Settings, runtime: Runtime, org_id: str, tmp_path
):
    from dataclasses import replace

    from cryptography import x509

    from gateway.bootstrap import build_runtime

    did, guid = _declared(runtime, org_id)
    cert = x509.load_pem_x509_certificate(settings.path(settings.customs_cert).read_bytes())
    listed = tmp_path / "customs-revoked.txt"
    listed.write_text(f"# revoked by customs, 2026-12-01\n{cert.serial_number:x}\n")
    revoking = replace(build_runtime(replace(settings, customs_revoked=str(listed))), ring=list)
    with pytest.raises(ReceiptRejected) as err:
        record_receipts(revoking, _receipt(settings, guid, "800"))
    assert err.value.violations[0].code == "signature.revoked"
    assert _state(runtime, did)[0] == "accepted"
    assert record_receipts(runtime, _receipt(settings, guid, "800")).applied == 1  # unlisted


@pytest.mark.parametrize(
    ("content", "said"),
    [("0a1b\nnot-hex\n", "revoked.txt:2: not a hexadecimal"), (None, "No such file")],
)
def test_a_revoked_list_that_cannot_be_read_stops_the_start_naming_the_setting(
    settings: Settings, tmp_path, capsys, content: str | None, said: str
):
    from dataclasses import replace

    from gateway.launcher import run

    listed = tmp_path / "revoked.txt"
    if content is not None:
        listed.write_text(content)
    assert run(replace(settings, customs_revoked=str(listed))) == 1  # before any process
    err = capsys.readouterr().err
    assert "error: GATEWAY_CUSTOMS_REVOKED:" in err and said in err
