"""The export path over HTTP: lists released one by one, then the month's summary
application (CEB701) and customs' summary result (CEB792)."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from tests.e2e.stack import Stack, wait_for_status
from tests.unit.test_corpus import CORPUS

GUID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")


def _export_list() -> bytes:
    tag = uuid.uuid4().hex[:8].upper()
    text = (CORPUS / "CEB603" / "valid.xml").read_text(encoding="utf-8")
    text = text.replace("EXL2026112300001", f"EXL{tag}").replace("INV202611230001", f"INV{tag}")
    return GUID.sub(lambda _m: str(uuid.uuid4()).upper(), text).encode()


def test_released_export_lists_are_summarised_and_the_result_is_kept(stack: Stack):
    xml = {"Content-Type": "application/xml"}
    with stack.client() as client:
        ids = []
        for _ in range(2):
            resp = client.post("/api/v1/declarations", content=_export_list(), headers=xml)
            assert resp.status_code == 202, resp.text
            ids.append(resp.json()["id"])
        for did in ids:
            wait_for_status(client, did, {"released", "closed"})
        month = (datetime.now(UTC) + timedelta(hours=8)).strftime("%Y-%m")
        resp = client.post("/api/v1/summaries", json={"month": month})
        assert resp.status_code == 202, resp.text
        (message,) = resp.json()["messages"]
        assert message["type"] == "CEB701"
        body = wait_for_status(client, message["id"], {"closed"})
        empty = client.post("/api/v1/summaries", json={"month": "1999-01"})
    result = [e for e in body["events"] if e["kind"] == "summary_result"]
    assert len(result) == 1 and "entryId" in result[0]["info"]
    assert empty.status_code == 422 and empty.json()["errors"][0]["code"] == "summary.empty"
