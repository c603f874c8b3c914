"""A seller uploads a spreadsheet to the running stack: the batch worker declares the good
rows, names the bad one, and the declared list clears like any other."""

from __future__ import annotations

import csv
import io
import uuid

from tests.e2e.stack import Stack, wait_for_status


def test_a_spreadsheet_upload_is_declared_by_the_batch_worker_and_clears(stack: Stack):
    with stack.client() as client:
        template = client.get("/api/v1/templates/CEB621.csv").content.decode("utf-8-sig")
        header, *rows = list(csv.reader(io.StringIO(template)))
        tag = uuid.uuid4().hex[:8].upper()
        for row in rows:  # other tests of the session may have declared the example's numbers
            for column in ("orderNo", "copNo", "logisticsNo"):
                row[header.index(column)] = column[:3].upper() + tag
        bad = list(rows[0])
        for column, value in (("orderNo", "ORD-E2E-BAD"), ("copNo", "COP-E2E-BAD"), ("qty", "x")):
            bad[header.index(column)] = value
        out = io.StringIO()
        csv.writer(out).writerows([header, *rows, bad])
        resp = client.post(
            "/api/v1/declarations/batch",
            params={"wait": "30"},
            content=out.getvalue().encode("gbk"),
            headers={"Content-Type": "text/csv", "X-Filename": "e2e.csv"},
            timeout=40,
        )
        assert resp.status_code == 200, resp.text
        body = resp.json()
        assert (body["status"], body["accepted"], body["rejected"]) == ("done", 1, 1)
        good, refused = body["items"]
        assert refused["name"] == "row 4" and refused["errors"][0]["column"] == "qty"
        wait_for_status(client, good["declaration_id"], {"released", "closed"})
