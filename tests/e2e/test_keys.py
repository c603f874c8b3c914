"""An operator rotates an organisation's key while the gateway runs: new declarations are
signed with the new key and customs accepts them; what was signed before still verifies."""

from __future__ import annotations

import time

from lxml import etree

from gateway.examples import fresh_ceb621
from signing import TrustStore, verify_enveloped
from tests.e2e.stack import Stack, cli, wait_for_status


def _signed_serial(client, declaration_id: str) -> tuple[str, etree._Element]:
    root = etree.fromstring(client.get(f"/api/v1/declarations/{declaration_id}/signed").content)
    name = root.find(".//{http://www.w3.org/2000/09/xmldsig#}KeyName").text
    return name, root


def test_rotating_a_key_changes_the_signer_and_keeps_old_signatures_valid(stack: Stack):
    xml = {"Content-Type": "application/xml"}
    with stack.client() as client:
        before = client.post("/api/v1/declarations", content=fresh_ceb621(), headers=xml).json()
        wait_for_status(client, before["id"], {"released", "closed"})
        old_serial, old_doc = _signed_serial(client, before["id"])

        listed = cli(stack, "keys", "list", "--org", "Demo Broker Co.")
        assert old_serial in listed and "active" in listed
        rotated = cli(stack, "keys", "rotate", "--org", "Demo Broker Co.", "--type", "ec")
        assert "active" in rotated and " ec " in rotated

        after = None
        for _ in range(100):  # the key ring re-reads the active key within seconds
            after = client.post("/api/v1/declarations", content=fresh_ceb621(), headers=xml).json()
            if _signed_serial(client, after["id"])[0] != old_serial:
                break
            time.sleep(0.1)
        assert after is not None
        body = wait_for_status(client, after["id"], {"released", "closed", "rejected"})
        new_serial, _ = _signed_serial(client, after["id"])
    assert new_serial != old_serial
    assert body["status"] in ("released", "closed"), body["events"]
    assert "ecdsa-sha256" in body["events"][1]["info"]
    listed = cli(stack, "keys", "list")
    assert "retired" in listed and old_serial in listed
    registered = TrustStore.from_directory(
        stack.data_dir / "keys" / "registered" / "DXPENT0000000001"
    )
    assert verify_enveloped(old_doc, registered).key_name == old_serial


def test_an_org_without_a_key_is_told_so_and_an_unregistered_sender_is_refused(stack: Stack):
    import json
    import shutil

    created = json.loads(
        cli(
            stack,
            "create-org",
            "--name",
            "Second Broker",
            "--codes",
            "2200000001",
            "--dxp-id",
            "DXPENT0000000099",
        )
    )
    xml = {"Content-Type": "application/xml"}
    with stack.client(created["api_key"]) as client:
        no_key = client.post("/api/v1/declarations", content=fresh_ceb621(), headers=xml)
        assert no_key.status_code == 409
        assert no_key.json()["type"].endswith("no-signing-key")

        cli(stack, "keys", "generate", "--org", "Second Broker")
        shutil.rmtree(stack.data_dir / "keys" / "registered" / "DXPENT0000000099")
        time.sleep(5.5)  # the key ring's cache
        resp = client.post("/api/v1/declarations", content=fresh_ceb621(), headers=xml)
        assert resp.status_code == 202, resp.text
        did = resp.json()["id"]
        body = wait_for_status(client, did, {"rejected"})
        # Inspection may refuse it first (it is routed there too): wait for customs' own 100.
        deadline = time.monotonic() + 30
        while body["authorities"]["customs"]["status"] is None and time.monotonic() < deadline:
            time.sleep(0.2)
            body = client.get(f"/api/v1/declarations/{did}").json()
    assert body["authorities"]["customs"]["status"] == "100"
    assert "验签失败" in body["authorities"]["customs"]["info"]
    assert "no registered signing certificate" in body["authorities"]["customs"]["info"]
