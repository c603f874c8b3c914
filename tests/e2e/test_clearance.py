"""A broker's whole path over HTTP: submit a CEB621, watch it released, fetch what was sent."""

from __future__ import annotations

import re
import time

import httpx
from lxml import etree

from gateway.examples import fresh_ceb621
from signing import TrustStore, verify_enveloped
from tests.e2e.stack import Stack, wait_for_status

XML = {"Content-Type": "application/xml"}


def submit(client: httpx.Client, body: bytes, **headers: str) -> httpx.Response:
    return client.post("/api/v1/declarations", content=body, headers={**XML, **headers})


def _customs_receipts(body: dict) -> int:  # type: ignore[type-arg]
    return sum(1 for e in body["events"] if e["kind"] == "receipt" and e["source"] == "customs")


def test_a_submitted_inventory_list_is_accepted_then_released_with_its_timeline(stack: Stack):
    with stack.client() as client:
        resp = submit(client, fresh_ceb621())
        assert resp.status_code == 202, resp.text
        accepted = resp.json()
        assert accepted["type"] == "CEB621"
        assert accepted["status"] == "accepted"
        assert resp.headers["Location"] == accepted["links"]["self"]

        body = wait_for_status(client, accepted["id"], {"released", "closed"})
        # Released at 800; a 120 pushed by the sandbox's other thread may land just after.
        deadline = time.monotonic() + 10
        while _customs_receipts(body) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
            body = client.get(f"/api/v1/declarations/{accepted['id']}").json()

    assert body["authorities"]["customs"]["status"] == "800"
    assert re.fullmatch(r"B\d{8}\d{9}", body["pre_no"])
    assert re.fullmatch(r"4601\d{4}I\d{9}", body["invt_no"])
    customs = [
        (e["kind"], e["code"])
        for e in body["events"]
        if e["source"] in ("gateway", "customs")
        and e["kind"] in ("accepted", "signed", "sent", "receipt")
    ]
    # The sandbox pushes with two threads, as an authority may: receipts can arrive in any
    # order, and the status only ever moves forward (800 stays 800 if 120 comes after it).
    assert customs[:3] == [("accepted", None), ("signed", None), ("sent", None)]
    assert sorted(customs[3:], key=lambda e: int(e[1])) == [
        ("receipt", "2"),
        ("receipt", "120"),
        ("receipt", "800"),
    ]
    assert "released" in [e["status"] for e in body["events"]]
    assert all(e["at"] and e["source"] for e in body["events"])
    receipts = {
        e["code"]: e for e in body["events"] if e["kind"] == "receipt" and e["source"] == "customs"
    }
    assert "preNo" in receipts["2"]["info"] and "invtNo" in receipts["120"]["info"]


def test_the_signed_xml_is_what_was_sent_and_it_verifies_with_the_declarant_certificate(
    stack: Stack,
):
    original = fresh_ceb621()
    with stack.client() as client:
        accepted = submit(client, original).json()
        wait_for_status(client, accepted["id"], {"released", "closed"})
        signed = client.get(accepted["links"]["signed"])
    assert signed.status_code == 200
    assert signed.headers["Content-Type"].startswith("application/xml")
    root = etree.fromstring(signed.content)
    assert etree.QName(root[-1]).localname == "Signature"
    trust = TrustStore.from_directory(stack.data_dir / "keys" / "registered" / "DXPENT0000000001")
    verified = verify_enveloped(root, trust)
    assert verified.root.get("guid") == etree.fromstring(original).get("guid")

    records = httpx.get(stack.sandbox + "/records").json()["customs"]
    head_guid = accepted["declarations"][0]["guid"]
    assert records["documents"][head_guid] == ["2", "120", "800"]


def test_each_document_of_a_message_is_its_own_declaration(stack: Stack):
    with stack.client() as client:
        resp = submit(client, fresh_ceb621(documents=3))
        assert resp.status_code == 202, resp.text
        decls = resp.json()["declarations"]
        assert [d["position"] for d in decls] == [1, 2, 3]
        finals = [wait_for_status(client, d["id"], {"released", "closed"}) for d in decls]
    assert len({f["invt_no"] for f in finals}) == 3
    assert len({f["message_id"] for f in finals}) == 1


def test_the_same_message_twice_is_a_conflict_that_points_to_the_original(stack: Stack):
    body = fresh_ceb621()
    with stack.client() as client:
        first = submit(client, body)
        again = submit(client, body)
    assert first.status_code == 202
    assert again.status_code == 409
    assert again.headers["Content-Type"] == "application/problem+json"
    assert again.json()["existing_message_id"] == first.json()["message"]["id"]
    assert again.json()["existing_declaration_ids"] == [first.json()["id"]]


def test_an_idempotency_key_replays_the_answer_and_refuses_another_body(stack: Stack):
    body = fresh_ceb621()
    with stack.client() as client:
        first = submit(client, body, **{"Idempotency-Key": "batch-7-item-1"})
        replay = submit(client, body, **{"Idempotency-Key": "batch-7-item-1"})
        other = submit(client, fresh_ceb621(), **{"Idempotency-Key": "batch-7-item-1"})
    assert first.status_code == 202
    assert replay.status_code == 200
    assert replay.json()["id"] == first.json()["id"] and replay.json()["replayed"] is True
    assert other.status_code == 422
    assert other.json()["errors"][0]["code"] == "idempotency.key_reused"


def test_schema_violations_are_all_reported_with_field_path_and_line(stack: Stack):
    text = fresh_ceb621().decode()
    text = text.replace("<ceb:gcode>1901101000</ceb:gcode>", "<ceb:gcode>19011010</ceb:gcode>")
    text = re.sub(r"<ceb:orderNo>[^<]*</ceb:orderNo>", "", text)
    with stack.client() as client:
        resp = submit(client, text.encode())
    assert resp.status_code == 422
    problem = resp.json()
    assert problem["status"] == 422 and problem["type"].endswith("schema-invalid")
    paths = {e["path"] for e in problem["errors"]}
    assert "/CEB621Message/Inventory[1]/InventoryList[1]/gcode" in paths
    assert all(isinstance(e["line"], int) and e["line"] > 0 for e in problem["errors"])
    assert len(problem["errors"]) >= 2


def test_bad_requests_get_specific_problems_never_a_500(stack: Stack):
    with stack.client() as client:
        cases = {
            "malformed": (submit(client, b"<ceb:CEB621Message><unclosed>"), 400, "xml.malformed"),
            "doctype": (
                submit(client, b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'),
                400,
                "xml.doctype_forbidden",
            ),
            "unknown type": (submit(client, b"<Invoice/>"), 415, "message.unknown_type"),
            "receipt as declaration": (
                submit(client, b'<CEB622Message xmlns="http://www.chinaport.gov.cn/ceb"/>'),
                415,
                "message.not_a_declaration",
            ),
            "json of no message": (
                client.post("/api/v1/declarations", json={"a": 1}),
                415,
                "message.unknown_type",
            ),
            "broken json": (
                client.post(
                    "/api/v1/declarations",
                    content=b'{"CEB621Message": ',
                    headers={"Content-Type": "application/json"},
                ),
                400,
                "json.malformed",
            ),
            "text": (
                client.post(
                    "/api/v1/declarations", content=b"hello", headers={"Content-Type": "text/plain"}
                ),
                415,
                "media_type.unsupported",
            ),
            "too large": (
                submit(client, b"<x>" + b"a" * (6 * 1024 * 1024) + b"</x>"),
                413,
                "xml.too_large",
            ),
            "empty": (submit(client, b""), 400, "xml.empty"),
        }
    for name, (resp, status, code) in cases.items():
        assert resp.status_code == status, (name, resp.text[:300])
        assert resp.headers["Content-Type"] == "application/problem+json", name
        assert resp.json()["errors"][0]["code"] == code, (name, resp.json())


def test_a_declaration_needs_a_key_and_is_visible_only_by_its_id(stack: Stack):
    no_key = httpx.post(stack.base + "/api/v1/declarations", content=fresh_ceb621(), headers=XML)
    assert no_key.status_code == 401
    with stack.client("swg_not_a_key") as client:
        assert submit(client, fresh_ceb621()).status_code == 401
    with stack.client() as client:
        missing = client.get("/api/v1/declarations/dcl_doesnotexist")
        listed = client.get("/api/v1/declarations", params={"limit": 2})
        bad_filter = client.get("/api/v1/declarations", params={"status": "nonsense"})
    assert missing.status_code == 404 and missing.json()["type"].endswith("not-found")
    assert listed.status_code == 200 and len(listed.json()["items"]) <= 2
    assert bad_filter.status_code == 422 and bad_filter.json()["errors"][0]["path"] == "?status"


def test_health_and_readiness(stack: Stack):
    assert httpx.get(stack.base + "/healthz").json() == {"status": "ok"}
    ready = httpx.get(stack.base + "/readyz")
    assert ready.status_code == 200 and ready.json()["redis"] == "ok"
