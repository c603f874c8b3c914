"""Operating it: request ids carried into jobs, metrics, health probes (real Redis, SQLite)."""

from __future__ import annotations

import io
import json
import logging
import socket
from collections.abc import Iterator
from dataclasses import fields, replace

import pytest
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families
from rq import Queue, SimpleWorker
from rq.serializers import JSONSerializer
from sqlalchemy import select

from gateway import create_app
from gateway.bootstrap import redis_connection
from gateway.examples import fresh_ceb621
from gateway.jobs.relay import _coalescer
from gateway.logs import JsonFormatter, PersonalDataFilter
from gateway.persistence import tables as t
from gateway.provisioning import ensure_demo_org
from gateway.services.runtime import Runtime
from gateway.settings import Settings
from tests.e2e.stack import free_port


@pytest.fixture
def client(settings: Settings) -> Iterator[FlaskClient]:
    key = ensure_demo_org(settings)
    app = create_app(replace(settings, metrics_cache_seconds=0.0))
    with app.test_client() as c:
        c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        yield c


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    """What the root logger writes, as the gateway's JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    handler.addFilter(PersonalDataFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(old_level)


def submit(client: FlaskClient, **headers: str):  # type: ignore[no-untyped-def]
    return client.post(
        "/api/v1/declarations",
        data=fresh_ceb621(),
        headers={"Content-Type": "application/xml", **headers},
    )


def dispatches(settings: Settings) -> list[dict]:  # type: ignore[type-arg]
    from gateway.persistence.database import get_engine

    with get_engine(settings.db_url).connect() as conn:
        return [dict(r) for r in conn.execute(select(t.dispatches)).mappings()]


def test_a_request_id_is_made_or_taken_and_returned(client: FlaskClient):
    made = client.get("/healthz").headers["X-Request-Id"]
    assert len(made) == 16 and made != client.get("/healthz").headers["X-Request-Id"]
    kept = client.get("/healthz", headers={"X-Request-Id": "lb-7f3a.1"})
    assert kept.headers["X-Request-Id"] == "lb-7f3a.1"
    refused = client.get("/healthz", headers={"X-Request-Id": "<script>"}).headers["X-Request-Id"]
    assert refused != "<script>" and len(refused) == 16
    problem = client.get("/api/v1/declarations/dcl_nope", headers={"X-Request-Id": "r-404"})
    assert problem.status_code == 404 and problem.headers["X-Request-Id"] == "r-404"


def test_the_submissions_request_id_rides_with_its_dispatch_into_its_delivery_logs(
    client: FlaskClient, settings: Settings, json_logs: io.StringIO, monkeypatch
):
    # The job loads its settings from the environment, as a real worker does.
    for f in fields(Settings):
        monkeypatch.setenv(f"GATEWAY_{f.name.upper()}", str(getattr(settings, f.name)))
    resp = submit(client, **{"X-Request-Id": "req-submit-1"})
    assert resp.status_code == 202 and resp.headers["X-Request-Id"] == "req-submit-1"
    (dispatch,) = dispatches(settings)
    assert dispatch["request_id"] == "req-submit-1"  # durable: a relay re-enqueue keeps it
    queue = Queue(
        settings.queue_name, connection=redis_connection(settings), serializer=JSONSerializer
    )
    bell = _coalescer(settings, queue)  # the relay turns the commit's ring into a job
    assert bell.collect(1.0) == 1 and bell.flush() == 1
    assert queue.fetch_job(f"deliver-{dispatch['id']}") is not None

    # A real rq worker runs the job in this process (customs is not running: a retry).
    SimpleWorker([queue], connection=queue.connection, serializer=JSONSerializer).work(burst=True)
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    delivery = [r for r in lines if r["logger"] == "gateway.services.deliver"]
    assert delivery, lines
    assert delivery[0]["request_id"] == "req-submit-1"
    assert delivery[0]["dispatch_id"] == dispatch["id"]
    assert "retry" in delivery[0]["message"]
    assert all("110105" not in json.dumps(r) or "********" in json.dumps(r) for r in lines)


def sample(body: str, name: str, **labels: str) -> float:
    """One sample of a scrape, 0 when absent."""
    for family in text_string_to_metric_families(body):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return float(s.value)
    return 0.0


def test_metrics_count_requests_and_read_the_business_from_the_stores(
    client: FlaskClient, settings: Settings
):
    before = client.get("/metrics").get_data(as_text=True)
    assert submit(client).status_code == 202
    client.get("/api/v1/declarations/dcl_nope")
    body = client.get("/metrics").get_data(as_text=True)
    submitted = dict(endpoint="declarations.submit", method="POST", status="202")
    missing = dict(endpoint="declarations.get_one", method="GET", status="404")
    for labels in (submitted, missing):
        name = "gateway_http_requests_total"
        assert sample(body, name, **labels) == sample(before, name, **labels) + 1
    hist = "gateway_http_request_duration_seconds_count"
    assert sample(body, hist, endpoint="declarations.submit") >= 1
    assert sample(body, "gateway_doorbell_rung") == 1  # the relay makes it a job
    assert sample(body, "gateway_queue_depth", queue="deliveries") == 0
    assert sample(body, "gateway_queue_jobs", queue="deliveries", state="queued") == 0
    waiting = dict(authority="customs", kind="declaration")
    assert sample(body, "gateway_dispatches", state="pending", **waiting) == 1
    assert sample(body, "gateway_deliveries_total", **waiting) == 0
    assert sample(body, "gateway_delivery_attempts_total", **waiting) == 0
    assert sample(body, "gateway_dispatch_oldest_waiting_seconds", authority="customs") >= 0
    assert sample(body, "gateway_declarations", status="accepted", type="CEB621") == 1
    assert sample(body, "gateway_outage_active", authority="customs") == 0
    assert sample(body, "gateway_metrics_source_up", source="database") == 1
    assert sample(body, "gateway_metrics_source_up", source="redis") == 1


def test_the_business_numbers_are_reused_for_a_few_seconds(settings: Settings):
    key = ensure_demo_org(settings)
    client = create_app(settings).test_client()  # metrics_cache_seconds = 5
    auth = {"Authorization": f"Bearer {key}", "Content-Type": "application/xml"}
    first = client.get("/metrics").get_data(as_text=True)
    assert client.post("/api/v1/declarations", data=fresh_ceb621(), headers=auth).status_code == 202
    again = client.get("/metrics").get_data(as_text=True)
    name = "gateway_declarations"
    assert sample(again, name, status="accepted") == sample(first, name, status="accepted") == 0


def test_receipts_are_counted_by_authority_and_code(settings: Settings, runtime: Runtime):
    from gateway.persistence.repository import insert_receipt

    with runtime.engine.begin() as conn:  # the runtime holds the keys receipts are sealed with
        for fp, code in (("a", "2"), ("b", "120"), ("c", "120")):
            insert_receipt(
                conn,
                fingerprint=fp,
                authority="customs",
                message_type="CEB622",
                return_status=code,
                applied=1,
                raw_xml=b"<x/>",
            )
    app = create_app(replace(settings, metrics_cache_seconds=0.0))
    body = app.test_client().get("/metrics").get_data(as_text=True)
    assert sample(body, "gateway_receipts_total", authority="customs", code="120") == 2
    assert sample(body, "gateway_receipts_total", authority="customs", code="2") == 1


def test_metrics_still_answer_when_redis_is_down(settings: Settings):
    app = create_app(replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    body = app.test_client().get("/metrics").get_data(as_text=True)
    assert 'gateway_metrics_source_up{source="redis"} 0.0' in body
    assert 'gateway_metrics_source_up{source="database"} 1.0' in body


@pytest.fixture
def listening() -> Iterator[str]:
    """A TCP endpoint that accepts connections, standing in for the authorities."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(16)
        yield f"http://127.0.0.1:{s.getsockname()[1]}/dxp"


def test_healthz_is_the_process_and_readyz_names_the_parts_that_failed(settings: Settings):
    client = create_app(settings).test_client()  # no authority is listening
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 503
    body = ready.json
    assert body["failed"] == ["customs", "inspection", "port"]
    assert body["database"] == "ok" and body["redis"] == "ok"
    assert body["checks"]["customs"] == {"status": "unreachable", "error": "ConnectionRefusedError"}


def test_readyz_is_ready_when_everything_answers_and_caches_its_answer(
    settings: Settings, listening: str
):
    ok = replace(settings, customs_url=listening, inspection_url=listening, port_url=listening)
    client = create_app(ok).test_client()
    first = client.get("/readyz")
    assert first.status_code == 200 and first.json["failed"] == []
    assert client.get("/readyz").json == first.json  # reused within health_cache_seconds


def test_readyz_fails_on_redis_but_not_on_a_planned_outage(settings: Settings, listening: str):
    from datetime import timedelta

    from gateway.persistence import repository as repo
    from gateway.persistence.database import get_engine
    from gateway.services.outages import announce

    now = repo.now()
    announce(get_engine(settings.db_url), "customs", now, now + timedelta(hours=1), "", "test")
    broken = replace(
        settings,
        redis_url=f"redis://127.0.0.1:{free_port()}/0",
        inspection_url=listening,
        port_url=listening,
    )
    body = create_app(broken).test_client().get("/readyz")
    assert body.status_code == 503 and body.json["failed"] == ["redis"]
    assert body.json["customs"] == "planned_outage"


def test_readyz_names_the_database_when_it_cannot_be_opened(settings: Settings, listening: str):
    broken = replace(
        settings,
        database_url="sqlite:////nonexistent/dir/gateway.db",
        customs_url=listening,
        inspection_url=listening,
        port_url=listening,
    )
    client = create_app(broken).test_client()
    ready = client.get("/readyz")
    assert ready.status_code == 503 and ready.json["failed"] == ["database"]
    assert ready.json["checks"]["database"]["status"] == "down"
    assert client.get("/healthz").status_code == 200  # liveness does not depend on it
