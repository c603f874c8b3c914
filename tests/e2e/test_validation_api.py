"""A broker checks before sending (/validate) and may declare in JSON as well as XML."""

from __future__ import annotations

import io
import json
import zipfile

from lxml import etree

from gateway.examples import fresh_ceb621
from gateway.xml.json_codec import xml_to_json
from gateway.xml.validation import detect
from tests.e2e.stack import Stack, wait_for_status

XML = {"Content-Type": "application/xml"}


def _as_json(xml: bytes) -> dict:
    root = etree.fromstring(xml)
    return xml_to_json(root, detect(root))


def test_a_message_declared_as_json_is_released_and_reads_back_as_json(stack: Stack):
    doc = _as_json(fresh_ceb621())
    with stack.client() as client:
        resp = client.post("/api/v1/declarations", json=doc)
        assert resp.status_code == 202, resp.text
        did = resp.json()["id"]
        wait_for_status(client, did, {"released", "closed"})
        back = client.get(
            f"/api/v1/declarations/{did}/message", headers={"Accept": "application/json"}
        )
        as_xml = client.get(f"/api/v1/declarations/{did}/message")
    assert back.status_code == 200 and back.json() == doc
    assert as_xml.headers["Content-Type"].startswith("application/xml")
    assert etree.fromstring(as_xml.content).get("guid") == doc["CEB621Message"]["@guid"]


def test_json_errors_name_the_field_path_without_xml_lines(stack: Stack):
    doc = _as_json(fresh_ceb621())
    head = doc["CEB621Message"]["Inventory"][0]["InventoryHead"]
    head["buyerIdNumber"] = "110105194912310021"
    del head["orderNo"]
    with stack.client() as client:
        resp = client.post("/api/v1/declarations", json=doc)
    assert resp.status_code == 422
    errors = {(e["path"], e["code"]) for e in resp.json()["errors"]}
    assert ("/CEB621Message/Inventory[1]/InventoryHead/orderNo", "schema.missing_element") in errors
    assert (
        "/CEB621Message/Inventory[1]/InventoryHead/buyerIdNumber",
        "rule.idcard.check_digit",
    ) in errors
    assert all(e["line"] is None for e in resp.json()["errors"])


def test_validate_gives_the_submission_report_without_declaring(stack: Stack):
    bad = fresh_ceb621(buyer_id="110105194912310021")
    with stack.client() as client:
        ok = client.post("/api/v1/validate", content=fresh_ceb621(), headers=XML)
        refused = client.post("/api/v1/validate", content=bad, headers=XML)
        submitted = client.post("/api/v1/declarations", content=bad, headers=XML)
        listed = client.get("/api/v1/declarations", params={"limit": 200}).json()["items"]
    assert ok.json()["valid"] is True and ok.json()["files"][0]["type"] == "CEB621"
    report = refused.json()["files"][0]
    assert refused.json()["valid"] is False and report["status"] == 422
    assert report["errors"] == submitted.json()["errors"]
    assert report["errors"][0]["message_zh"]
    assert "110105194912310021" not in json.dumps(report)  # personal data is masked
    guid = etree.fromstring(bad).get("guid")
    assert all(item["guid"] != guid for item in listed)


def test_validate_takes_a_zip_and_reports_every_file(stack: Stack):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("good.xml", fresh_ceb621())
        zf.writestr("good.json", json.dumps(_as_json(fresh_ceb621())))
        zf.writestr("broken.xml", b"<ceb:CEB621Message")
        zf.writestr("hostile.xml", b'<!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>')
    with stack.client() as client:
        resp = client.post(
            "/api/v1/validate", content=buf.getvalue(), headers={"Content-Type": "application/zip"}
        )
    assert resp.status_code == 200
    files = {f["file"]: f for f in resp.json()["files"]}
    assert files["good.xml"]["valid"] and files["good.json"]["valid"]
    assert files["broken.xml"]["errors"][0]["code"] == "xml.malformed"
    assert files["hostile.xml"]["errors"][0]["code"] == "xml.doctype_forbidden"
    assert resp.json()["valid"] is False
