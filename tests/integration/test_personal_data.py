"""Personal data: sealed at rest (old plaintext rows still read and get resealed), exact
bytes read back, and masked for every party that is not the declarant or its broker."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask.testing import FlaskClient
from sqlalchemy import insert, select

from gateway import create_app
from gateway.domain.audit import Actor
from gateway.persistence import repository as repo
from gateway.persistence import tables as t
from gateway.persistence.data_keys import key_id_of, load_ring, prepend_key
from gateway.provisioning import create_org, ensure_demo_org
from gateway.services.data_keys import key_usage, reencrypt, scrub_sqlite
from gateway.services.declare import declare
from gateway.services.runtime import Runtime
from gateway.settings import Settings
from tests.e2e.buyers import ceb621_for, synthetic_buyer

BROKER_CODE = "3301980001"


def _db_bytes(settings: Settings) -> bytes:
    files = [Path(str(settings.data_path / "gateway.db") + s) for s in ("", "-wal")]
    return b"".join(f.read_bytes() for f in files if f.exists())


def _secrets(i: int) -> list[bytes]:
    b = synthetic_buyer(i)
    return [b.id_number.encode(), b.phone.encode(), b.name.encode(), b.address.encode()]


def test_a_declared_list_is_sealed_in_the_database_and_reads_back_exactly(
    runtime: Runtime, org_id: str, settings: Settings
) -> None:
    body = ceb621_for(synthetic_buyer(1))
    acc = declare(runtime, org_id, body, "application/xml")
    with runtime.engine.connect() as conn:
        stored = conn.execute(select(t.messages).where(t.messages.c.id == acc.message_id)).one()
        msg = repo.get_message(conn, acc.message_id)
    assert key_id_of(stored.raw_xml) and key_id_of(stored.signed_xml)
    assert msg is not None and msg["raw_xml"] == body
    assert msg["signed_xml"].startswith(b"<?xml") and b"<ds:Signature" in msg["signed_xml"]
    content = _db_bytes(settings)
    for secret in _secrets(1):
        assert secret not in content


def test_rows_from_before_encryption_still_read_and_are_resealed_then_scrubbed(
    runtime: Runtime, org_id: str, settings: Settings
) -> None:
    body = ceb621_for(synthetic_buyer(2))
    with runtime.engine.begin() as conn:  # as a gateway before this release stored it
        conn.execute(
            insert(t.messages).values(
                id="msg_legacy",
                org_id=org_id,
                type="CEB621",
                guid="LEGACY-GUID",
                version="1.0",
                body_hash="0" * 64,
                raw_xml=body,
                signed_xml=body,
                created_at=repo.now(),
            )
        )
    assert synthetic_buyer(2).id_number.encode() in _db_bytes(settings)
    with runtime.engine.connect() as conn:
        assert repo.get_message(conn, "msg_legacy")["raw_xml"] == body  # type: ignore[index]
    assert key_usage(runtime.engine)["messages.raw_xml"]["plaintext"] == 1

    # Rotate (as the CLI does, in another process): a new first key in the key file, and
    # every row resealed under it; this running gateway meets the new key id and reloads.
    declare(runtime, org_id, ceb621_for(synthetic_buyer(3)), "application/xml")
    old = key_usage(runtime.engine)["messages.raw_xml"]
    prepend_key(settings.data_keys_file)
    rotated = load_ring("", settings.data_keys_file)
    done = reencrypt(runtime.engine, rotated, Actor("operator", "cli:test"))
    assert done["messages.raw_xml"] == done["messages.signed_xml"] == 2
    usage = key_usage(runtime.engine)["messages.raw_xml"]
    assert dict(usage) == {rotated.primary: 2} and rotated.primary not in old
    with runtime.engine.connect() as conn:
        assert repo.get_message(conn, "msg_legacy")["raw_xml"] == body  # type: ignore[index]
    assert reencrypt(runtime.engine, rotated, Actor("operator", "cli:test")).total() == 0
    assert scrub_sqlite(runtime.engine)
    content = _db_bytes(settings)
    for i in (2, 3):
        for secret in _secrets(i):
            assert secret not in content


@pytest.fixture
def clients(settings: Settings, org_id: str) -> Iterator[dict[str, FlaskClient]]:
    """The declarant (demo org), its broker, the platform named on the list, an outsider."""
    keys = {
        "declarant": ensure_demo_org(settings),
        "broker": create_org(settings, "Broker B", [BROKER_CODE], "DXPENT0000000009")[1],
        "platform": create_org(settings, "Platform P", ["1101110325"], "DXPENT0000000008")[1],
        "outsider": create_org(settings, "Outsider O", ["9999999999"], "DXPENT0000000007")[1],
    }
    app = create_app(settings)
    out = {}
    for who, key in keys.items():
        c = app.test_client()
        c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        out[who] = c
    yield out


def test_only_the_declarant_and_its_broker_read_personal_data_whole(
    clients: dict[str, FlaskClient],
) -> None:
    buyer = synthetic_buyer(4)
    body = ceb621_for(buyer).replace(
        b"1105910159</ceb:agentCode>", BROKER_CODE.encode() + b"</ceb:agentCode>"
    )
    resp = clients["declarant"].post(
        "/api/v1/declarations", data=body, content_type="application/xml"
    )
    assert resp.status_code == 202, resp.get_json()
    did = resp.get_json()["id"]
    base = f"/api/v1/declarations/{did}"
    for who in ("declarant", "broker"):
        xml = clients[who].get(base + "/message")
        assert xml.status_code == 200 and xml.headers["X-Personal-Data"] == "whole"
        assert xml.data == body if who == "declarant" else buyer.id_number.encode() in xml.data
        assert clients[who].get(base + "/signed").status_code == 200
    platform = clients["platform"]
    assert platform.get(base).status_code == 200  # a party named on it sees the declaration
    xml = platform.get(base + "/message")
    as_json = platform.get(base + "/message", headers={"Accept": "application/json"})
    assert xml.headers["X-Personal-Data"] == as_json.headers["X-Personal-Data"] == "masked"
    text = xml.data.decode() + json.dumps(as_json.get_json(), ensure_ascii=False)
    for secret in _secrets(4):
        assert secret.decode() not in text
    assert buyer.id_number[:6] + "********" + buyer.id_number[-4:] in text
    assert platform.get(base + "/signed").status_code == 403
    for path in ("", "/message", "/signed"):
        assert clients["outsider"].get(base + path).status_code == 404


def test_free_text_from_authorities_is_stored_without_id_or_phone_numbers(
    runtime: Runtime, org_id: str
) -> None:
    acc = declare(runtime, org_id, ceb621_for(synthetic_buyer(5)), "application/xml")
    did, b = acc.declarations[0].id, synthetic_buyer(5)
    said = f"订购人证件号码{b.id_number}与支付人不符，电话{b.phone} / id {b.id_number} mismatch"
    with runtime.engine.begin() as conn:
        repo.insert_events(
            conn,
            [
                dict(
                    declaration_id=did,
                    at=repo.now(),
                    kind="receipt",
                    source="customs",
                    status="rejected",
                    code="100",
                    info=said,
                )
            ],
        )
        repo.update_authority_status(conn, did, "customs", code="100", info=said)
    with runtime.engine.connect() as conn:
        stored = repo.events_of(conn, did)[-1]["info"] + repo.authority_rows(conn, did)[0]["info"]
    assert b.id_number not in stored and b.phone not in stored
    assert b.id_number[:6] + "********" + b.id_number[-4:] in stored
