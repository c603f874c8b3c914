"""Bulk submission through the HTTP API on SQLite and a real Redis: a ZIP of messages and a
spreadsheet per template, per-item results, declare once, and a batch processed twice."""

from __future__ import annotations

import csv
import io
import threading
import zipfile
from dataclasses import replace
from datetime import timedelta

import hypothesis
import pytest
import redis
from flask.testing import FlaskClient
from hypothesis import strategies as st
from sqlalchemy.exc import OperationalError

from gateway import create_app
from gateway.examples import fresh_ceb621, fresh_parcel
from gateway.jobs.batch import batch_limits, batch_queue, job_id, requeue_batches
from gateway.persistence import batches as store
from gateway.persistence import repository as repo
from gateway.provisioning import ensure_demo_org
from gateway.services import batch as batch_service
from gateway.services.batch import process_batch, process_chunk
from gateway.services.runtime import Runtime
from gateway.settings import Settings


@pytest.fixture
def client(keyed_client: FlaskClient) -> FlaskClient:
    return keyed_client


def _zip(files: dict[str, bytes]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


def _run(runtime: Runtime, settings: Settings, batch_id: str) -> str:
    return process_batch(runtime, batch_id, batch_limits(settings), settings.lease_seconds)


def _template_rows(client: FlaskClient, name: str) -> tuple[list[str], list[list[str]]]:
    resp = client.get(f"/api/v1/templates/{name}.csv")
    assert resp.status_code == 200
    rows = list(csv.reader(io.StringIO(resp.data.decode("utf-8-sig"))))
    return rows[0], rows[1:]


def _csv(header: list[str], rows: list[list[str]], encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([header, *rows])
    return out.getvalue().encode(encoding)


def _set(header: list[str], row: list[str], column: str, value: str) -> list[str]:
    row = list(row)
    row[header.index(column)] = value
    return row


def test_a_zip_of_messages_declares_the_good_files_and_names_the_bad_one(
    client: FlaskClient, runtime: Runtime, settings: Settings
):
    parcel = fresh_parcel()
    bad = fresh_ceb621().replace(
        b"<ceb:gcode>1901101000</ceb:gcode>", b"<ceb:gcode>19011010</ceb:gcode>"
    )
    body = _zip(
        {
            "order.xml": parcel["CEB311"],
            "payment.xml": parcel["CEB411"],
            "bad/inventory.xml": bad,
            "notes.txt": b"hello",
            "__MACOSX/._order.xml": b"junk",
        }
    )
    resp = client.post("/api/v1/declarations/batch", data=body, content_type="application/zip")
    assert resp.status_code == 202, resp.get_json()
    answer = resp.get_json()
    assert answer["status"] == "queued" and answer["total"] == 4
    assert resp.headers["Location"] == f"/api/v1/batches/{answer['id']}"
    assert _run(runtime, settings, answer["id"]).endswith("batch done")
    got = client.get(f"/api/v1/batches/{answer['id']}").get_json()
    assert (got["status"], got["processed"], got["accepted"], got["rejected"]) == ("done", 4, 2, 2)
    by_name = {i["name"]: i for i in got["items"]}
    assert by_name["order.xml"]["status"] == "accepted"
    assert by_name["order.xml"]["declaration_id"].startswith("dcl_")
    assert by_name["bad/inventory.xml"]["http_status"] == 422
    assert by_name["bad/inventory.xml"]["errors"][0]["path"].endswith("/InventoryList[1]/gcode")
    assert by_name["notes.txt"]["errors"][0]["code"] == "batch.file_type"


def test_the_downloaded_template_uploads_back_as_one_document_per_order(
    client: FlaskClient, runtime: Runtime, settings: Settings
):
    header, rows = _template_rows(client, "CEB621")
    assert len(rows) == 2  # one inventory list of two goods lines, the head repeated
    second = [_set(header, r, "orderNo", "ORD-B2") for r in rows]
    second = [_set(header, r, "copNo", "COP-B2") for r in second]
    second = [_set(header, r, "logisticsNo", "LN-B2") for r in second]
    second[1] = _set(header, second[1], "qty", "abc")
    third = [_set(header, rows[0], "orderNo", "ORD-B3")]
    third = [_set(header, third[0], "copNo", "COP-B3")]
    third = [_set(header, third[0], "buyerName", "")]
    body = _csv(header, rows + second + third)
    resp = client.post(
        "/api/v1/declarations/batch?template=inventory", data=body, content_type="text/csv"
    )
    assert resp.status_code == 202, resp.get_json()
    batch_id = resp.get_json()["id"]
    assert resp.get_json()["total"] == 3
    _run(runtime, settings, batch_id)
    got = client.get(f"/api/v1/batches/{batch_id}").get_json()
    items = got["items"]
    assert [i["name"] for i in items] == ["rows 2-3", "rows 4-5", "row 6"]
    assert [i["status"] for i in items] == ["accepted", "rejected", "rejected"]
    qty = [e for e in items[1]["errors"] if e["column"] == "qty"]
    assert qty and qty[0]["row"] == 5 and qty[0]["value"] == "abc"
    assert any(e["column"] == "buyerName" and e["row"] == 6 for e in items[2]["errors"])
    with runtime.engine.connect() as conn:
        decl = repo.get_declaration(conn, items[0]["declaration_id"])
    assert decl is not None and decl["cop_no"] == "COP202611230001"


def test_a_gbk_csv_as_chinese_excel_saves_it_is_read(
    client: FlaskClient, runtime: Runtime, settings: Settings
):
    header, rows = _template_rows(client, "CEB511")
    resp = client.post(
        "/api/v1/declarations/batch", data=_csv(header, rows, "gbk"), content_type="text/csv"
    )
    assert resp.status_code == 202, resp.get_json()
    _run(runtime, settings, resp.get_json()["id"])
    got = client.get(f"/api/v1/batches/{resp.get_json()['id']}").get_json()
    assert got["template"] == "CEB511" and got["accepted"] == 1, got["items"]
    did = got["items"][0]["declaration_id"]
    message = client.get(f"/api/v1/declarations/{did}/message").data.decode()
    assert "示例物流企业" in message


def test_a_duplicate_in_a_batch_is_409_for_that_item_only(
    client: FlaskClient, runtime: Runtime, settings: Settings
):
    header, rows = _template_rows(client, "CEB411")
    client.post("/api/v1/declarations/batch", data=_csv(header, rows), content_type="text/csv")
    first = client.post(
        "/api/v1/declarations/batch", data=_csv(header, rows), content_type="text/csv"
    ).get_json()["id"]
    other = _set(header, rows[0], "payTransactionId", "PAY-OTHER-1")
    second = client.post(
        "/api/v1/declarations/batch", data=_csv(header, [rows[0], other]), content_type="text/csv"
    ).get_json()["id"]
    _run(runtime, settings, first)
    _run(runtime, settings, second)
    items = client.get(f"/api/v1/batches/{second}").get_json()["items"]
    assert [i["status"] for i in items] == ["rejected", "accepted"]
    assert items[0]["http_status"] == 409
    assert items[0]["errors"][0]["column"] == "payTransactionId"


def test_a_batch_processed_twice_declares_nothing_twice(
    client: FlaskClient, runtime: Runtime, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    header, rows = _template_rows(client, "CEB311")
    batch_id = client.post(
        "/api/v1/declarations/batch", data=_csv(header, rows), content_type="text/csv"
    ).get_json()["id"]

    def crash(*_args: object) -> None:
        raise OperationalError("UPDATE batch_items", {}, Exception("the worker died"))

    # The worker declares the item, then dies before it records the result.
    with monkeypatch.context() as m:
        m.setattr(store, "record_items", crash)
        with pytest.raises(OperationalError):
            _run(runtime, settings, batch_id)
    got = client.get(f"/api/v1/batches/{batch_id}").get_json()
    assert (got["status"], got["items"][0]["status"]) == ("running", "pending")
    with runtime.engine.begin() as conn:  # its lease runs out; the relay re-enqueues the chunk
        conn.execute(
            store.t.batch_chunks.update().values(lease_until=repo.now() - timedelta(seconds=1))
        )
    assert _run(runtime, settings, batch_id).endswith("batch done")
    again = client.get(f"/api/v1/batches/{batch_id}").get_json()
    assert again["accepted"] == 1
    assert again["items"][0]["http_status"] == 200  # replayed, not declared again
    with runtime.engine.connect() as conn:
        found = repo.list_declarations(
            conn, _org(runtime), status=None, message_type="CEB311", before=None, limit=10
        )
        kept = store.get_batch(conn, batch_id, with_upload=True)
    assert [d["id"] for d in found] == again["items"][0]["declaration_ids"]
    assert kept is not None and kept["upload"] == b""  # done: the bytes are not kept


def _org(runtime: Runtime) -> str:
    with runtime.engine.connect() as conn:
        return str(conn.execute(store.t.organisations.select()).mappings().first()["id"])


def test_the_job_is_enqueued_under_a_deterministic_id_and_the_relay_requeues_lost_ones(
    client: FlaskClient, settings: Settings
):
    header, rows = _template_rows(client, "CEB511")
    batch_id = client.post(
        "/api/v1/declarations/batch", data=_csv(header, rows), content_type="text/csv"
    ).get_json()["id"]
    conn = redis.Redis.from_url(settings.redis_url)
    queue = batch_queue(settings, conn)
    assert job_id(batch_id, 0) in queue.job_ids
    conn.flushdb()  # Redis lost it
    assert requeue_batches(settings) == 1
    assert job_id(batch_id, 0) in queue.job_ids
    assert requeue_batches(settings) == 0  # postponed: not enqueued again at once


def test_wait_holds_the_answer_until_a_worker_is_done(
    client: FlaskClient, runtime: Runtime, settings: Settings
):
    header, rows = _template_rows(client, "CEB511")
    resp = client.post(
        "/api/v1/declarations/batch?wait=0.2", data=_csv(header, rows), content_type="text/csv"
    )
    assert resp.status_code == 202  # no worker yet: still queued when the wait ends
    batch_id = resp.get_json()["id"]
    worker = threading.Timer(0.3, _run, (runtime, settings, batch_id))
    worker.start()
    resp = client.get(f"/api/v1/batches/{batch_id}?wait=10")
    worker.join()
    assert resp.status_code == 200
    assert resp.get_json()["status"] == "done" and resp.get_json()["accepted"] == 1
    refused = client.post("/api/v1/declarations/batch?wait=61", data=b"x", content_type="text/csv")
    assert refused.status_code == 400
    assert refused.get_json()["errors"][0]["code"] == "query.wait"


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code"),
    [
        (b"not a zip", "application/zip", 400, "batch.not_a_zip"),
        (b"<x/>", "application/xml", 415, "media_type.unsupported"),
        (b"orderNo,qtty\r\nA,1\r\n", "text/csv", 422, "batch.missing_column"),
        (b"\xff\xfe\xfa", "text/csv", 400, "csv.encoding"),
        (b"orderNo\r\n", "text/csv", 422, "batch.missing_column"),
    ],
)
def test_bad_uploads_are_problems_naming_the_reason(
    client: FlaskClient, body: bytes, content_type: str, status: int, code: str
):
    resp = client.post("/api/v1/declarations/batch", data=body, content_type=content_type)
    assert resp.status_code == status, resp.get_json()
    assert resp.mimetype == "application/problem+json"
    assert code in [e["code"] for e in resp.get_json()["errors"]]


def test_another_organisation_cannot_see_a_batch(
    client: FlaskClient, settings: Settings, runtime: Runtime
):
    from gateway.provisioning import create_org

    header, rows = _template_rows(client, "CEB511")
    batch_id = client.post(
        "/api/v1/declarations/batch", data=_csv(header, rows), content_type="text/csv"
    ).get_json()["id"]
    _org_id, key = create_org(settings, "Other Co.", ["9999999999"], "DXPENT0000000099", "broker")
    resp = client.get(f"/api/v1/batches/{batch_id}", headers={"Authorization": f"Bearer {key}"})
    assert resp.status_code == 404
    theirs = client.get("/api/v1/batches", headers={"Authorization": f"Bearer {key}"})
    assert theirs.get_json() == {"items": [], "next_cursor": None}
    ours = client.get("/api/v1/batches?limit=1").get_json()
    assert [b["id"] for b in ours["items"]] == [batch_id] and ours["next_cursor"] is None


def test_templates_are_listed_and_downloadable_as_xlsx(client: FlaskClient):
    index = client.get("/api/v1/templates").get_json()["templates"]
    assert [t["name"] for t in index] == ["CEB311", "CEB411", "CEB511", "CEB621"]
    resp = client.get(index[3]["links"]["xlsx"])
    assert resp.status_code == 200 and resp.data.startswith(b"PK")
    assert client.get("/api/v1/templates/CEB999.csv").status_code == 404


def test_an_xlsx_upload_is_read_like_a_csv(
    client: FlaskClient, runtime: Runtime, settings: Settings
):
    body = client.get("/api/v1/templates/CEB621.xlsx").data
    resp = client.post(
        "/api/v1/declarations/batch",
        data=body,
        content_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    )
    assert resp.status_code == 202, resp.get_json()
    _run(runtime, settings, resp.get_json()["id"])
    got = client.get(f"/api/v1/batches/{resp.get_json()['id']}").get_json()
    assert (got["kind"], got["template"], got["accepted"]) == ("xlsx", "CEB621", 1), got["items"]


def test_a_batch_another_worker_holds_is_left_to_it(
    client: FlaskClient, runtime: Runtime, settings: Settings
):
    header, rows = _template_rows(client, "CEB511")
    batch_id = client.post(
        "/api/v1/declarations/batch", data=_csv(header, rows), content_type="text/csv"
    ).get_json()["id"]
    with runtime.engine.begin() as conn:
        assert store.claim_chunk(conn, batch_id, 0, 30) is not None
    assert _run(runtime, settings, batch_id).startswith("not claimed")
    got = client.get(f"/api/v1/batches/{batch_id}").get_json()
    assert (got["status"], got["processed"]) == ("running", 0)
    with runtime.engine.begin() as conn:  # that worker died: its lease runs out
        conn.execute(
            store.t.batch_chunks.update().values(lease_until=repo.now() - timedelta(seconds=1))
        )
    assert "batch done" in _run(runtime, settings, batch_id)
    assert _run(runtime, settings, batch_id).startswith("not claimed")  # finished


def test_an_upload_from_a_browser_form_is_read_by_its_file_name(
    client: FlaskClient, runtime: Runtime, settings: Settings
):
    header, rows = _template_rows(client, "CEB411")
    resp = client.post(
        "/api/v1/declarations/batch",
        data={"file": (io.BytesIO(_csv(header, rows, "gbk")), "payments.csv")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 202, resp.get_json()
    assert resp.get_json()["filename"] == "payments.csv"
    assert resp.get_json()["total"] == 1


def test_an_upload_over_the_batch_limit_is_413_but_the_limit_is_its_own(
    settings: Settings, org_id: str
):
    key = ensure_demo_org(settings)
    small = replace(settings, batch_max_bytes=1000, max_body_bytes=100)
    with create_app(small).test_client() as c:
        headers = {"Authorization": f"Bearer {key}"}
        resp = c.post(
            "/api/v1/declarations/batch", data=b"x" * 2000, content_type="text/csv", headers=headers
        )
        assert resp.status_code == 413
        assert resp.mimetype == "application/problem+json"
        resp = c.post(
            "/api/v1/declarations/batch", data=b"x" * 500, content_type="text/csv", headers=headers
        )
        assert resp.status_code == 422  # read (over max_body_bytes), then refused on its header


_SEEDS: dict[str, bytes] = {}


def _seeds(client: FlaskClient) -> dict[str, bytes]:
    """The same bytes for every example (hypothesis replays its draws against them)."""
    if not _SEEDS:
        header, rows = _template_rows(client, "CEB621")
        _SEEDS["text/csv"] = _csv(header, rows, "gbk")
        _SEEDS["application/zip"] = _zip(
            {"a.xml": fresh_ceb621(), "b.json": b'{"CEB621Message": {}}'}
        )
        _SEEDS["application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"] = client.get(
            "/api/v1/templates/CEB511.xlsx"
        ).data
    return _SEEDS


@hypothesis.settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[
        hypothesis.HealthCheck.function_scoped_fixture,
        hypothesis.HealthCheck.too_slow,
    ],
)
@hypothesis.given(data=st.data())
def test_mangled_uploads_are_refused_or_reported_never_a_5xx(
    client: FlaskClient, runtime: Runtime, settings: Settings, data: st.DataObject
):
    seeds = _seeds(client)
    media = data.draw(st.sampled_from(sorted(seeds)))
    body = bytearray(seeds[media])
    for _ in range(data.draw(st.integers(0, 5))):
        pos = data.draw(st.integers(0, max(0, len(body) - 1)))
        if data.draw(st.booleans()):
            del body[pos : pos + data.draw(st.integers(1, 64))]
        else:
            body[pos:pos] = data.draw(
                st.sampled_from([b",", b'"', b"\r\n", b"\xff", b"\x00", b"PK"])
            )
    resp = client.post("/api/v1/declarations/batch", data=bytes(body), content_type=media)
    assert resp.status_code < 500, resp.get_json()
    if resp.status_code == 202:
        _run(runtime, settings, resp.get_json()["id"])
        got = client.get(f"/api/v1/batches/{resp.get_json()['id']}").get_json()
        assert got["status"] == "done"
        assert all(i["http_status"] != 500 for i in got["items"]), got["items"]


def test_a_large_batch_is_shared_by_workers_chunk_by_chunk(
    client: FlaskClient, runtime: Runtime, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(batch_service, "MIN_CHUNK", 1)
    header, rows = _template_rows(client, "CEB411")
    rows = [_set(header, rows[0], "payTransactionId", f"PAY-CHUNK-{n}") for n in range(3)]
    answer = client.post(
        "/api/v1/declarations/batch", data=_csv(header, rows), content_type="text/csv"
    ).get_json()
    queue = batch_queue(settings, redis.Redis.from_url(settings.redis_url))
    assert {job_id(answer["id"], c) for c in range(3)} <= set(queue.job_ids)
    limits, lease = batch_limits(settings), settings.lease_seconds
    assert process_chunk(runtime, answer["id"], 2, limits, lease).startswith("chunk 2: 1 item")
    assert client.get(f"/api/v1/batches/{answer['id']}").get_json()["status"] == "running"
    process_chunk(runtime, answer["id"], 0, limits, lease)
    assert "batch done" in process_chunk(runtime, answer["id"], 1, limits, lease)
    got = client.get(f"/api/v1/batches/{answer['id']}").get_json()
    assert (got["status"], got["accepted"]) == ("done", 3)
    assert [i["status"] for i in got["items"]] == ["accepted"] * 3


def test_an_upload_retried_with_its_idempotency_key_answers_with_the_same_batch(
    client: FlaskClient,
):
    header, rows = _template_rows(client, "CEB511")
    body, headers = _csv(header, rows), {"Idempotency-Key": "upload-7"}
    first = client.post(
        "/api/v1/declarations/batch", data=body, content_type="text/csv", headers=headers
    )
    again = client.post(
        "/api/v1/declarations/batch", data=body, content_type="text/csv", headers=headers
    )
    assert first.status_code == again.status_code == 202
    assert again.get_json()["id"] == first.get_json()["id"]
    assert (first.get_json()["replayed"], again.get_json()["replayed"]) == (False, True)
    other = client.post(
        "/api/v1/declarations/batch", data=body + b"\r\n", content_type="text/csv", headers=headers
    )
    assert other.status_code == 422
    assert other.get_json()["errors"][0]["code"] == "idempotency.key_reused"
