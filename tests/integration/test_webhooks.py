"""Webhooks against a real HTTP receiver, on SQLite and a real Redis: signed, retried until a
2xx, each event delivered once per webhook, the attempts listed; and the events feed."""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import httpx
import pytest
from sqlalchemy import func, select

from gateway import create_app
from gateway.bootstrap import delivery_queue
from gateway.domain.webhooks import SignatureMismatch, verify
from gateway.jobs.webhooks import webhook_config, webhook_pass
from gateway.persistence import tables as t
from gateway.persistence.database import get_engine
from gateway.persistence.webhooks import insert_deliveries
from gateway.provisioning import create_org, ensure_demo_org
from gateway.services.receipts import record_receipts
from gateway.services.runtime import Runtime
from gateway.services.webhook_delivery import fan_out, send
from gateway.settings import Settings
from tests.integration.test_receipts import _declared, _receipt
from tests.webhook_receiver import Receiver

STATUS_CHANGED = ["declaration.status_changed"]


@pytest.fixture
def settings(settings: Settings) -> Settings:
    """Fast retries, so a test sees backoff happen in milliseconds."""
    return replace(
        settings,
        webhook_retry_base_seconds=0.02,
        webhook_retry_max_seconds=0.05,
        webhook_timeout=2.0,
    )


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def api(settings: Settings, org_id: str) -> Iterator[httpx.Client]:
    """The gateway's HTTP API in-process, as the demo organisation."""
    key = ensure_demo_org(settings)
    c = create_app(settings).test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    yield c  # type: ignore[misc]


@pytest.fixture
def other(settings: Settings) -> Iterator[httpx.Client]:
    """Another organisation's view of the same API."""
    _org, key = create_org(settings, "Other Trading Co.", ["9999999999"], "DXPOTHER00000001")
    c = create_app(settings).test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    yield c  # type: ignore[misc]


def pump(settings: Settings, rounds: int = 200) -> None:
    """Play the relay and a worker: fan out, enqueue, run each enqueued send, until idle."""
    queue = delivery_queue(settings)
    engine = get_engine(settings.db_url)
    cfg = webhook_config(settings)
    with httpx.Client(timeout=2) as http:
        for _ in range(rounds):
            webhook_pass(settings)
            job_ids = queue.job_ids
            queue.empty()
            for job_id in job_ids:
                send(engine, cfg, job_id.removeprefix("webhook-"), http)
            with engine.connect() as conn:
                waiting = conn.execute(
                    select(func.count())
                    .select_from(t.webhook_deliveries)
                    .where(t.webhook_deliveries.c.state.in_(("pending", "sending")))
                ).scalar_one()
            if not waiting and not job_ids:
                return
            time.sleep(0.01)
    raise AssertionError("deliveries still waiting after the pump")


def register(api, url: str, events: list[str] = STATUS_CHANGED) -> dict:  # type: ignore[no-untyped-def, type-arg]
    resp = api.post("/api/v1/webhooks", json={"url": url, "events": events})
    assert resp.status_code == 201, resp.get_json()
    return resp.get_json()  # type: ignore[no-any-return]


def clear(settings: Settings, runtime: Runtime, org_id: str) -> tuple[str, str]:
    """Declare a list and let customs take it through 2, 120 and 800 to released."""
    did, guid = _declared(runtime, org_id)
    for code in ("2", "120", "800"):
        assert record_receipts(runtime, _receipt(settings, guid, code)).applied == 1
    return did, guid


def test_each_status_change_is_posted_once_signed_with_the_secret_shown_at_registration(
    settings, runtime, org_id, api, receiver
):
    hook = register(api, receiver.url)
    assert hook["secret"].startswith("whsec_")
    assert "secret" not in api.get(f"/api/v1/webhooks/{hook['id']}").get_json()
    did, _guid = clear(settings, runtime, org_id)
    pump(settings)
    pump(settings)  # a second relay pass finds nothing new to send

    got = receiver.accepted()
    statuses = [(r.json["data"]["previous_status"], r.json["data"]["status"]) for r in got]
    assert statuses == [
        (None, "accepted"),
        ("accepted", "under_review"),
        ("under_review", "released"),
    ]
    assert len({r.json["id"] for r in got}) == len(got) == len(receiver.requests)
    for r in got:
        assert r.path == "/hook" and r.headers["Content-Type"] == "application/json"
        assert r.json["type"] == "declaration.status_changed"
        assert r.json["data"]["declaration_id"] == did
        stamp = verify(hook["secret"], r.headers["Webhook-Signature"], r.body, now=int(time.time()))
        assert str(stamp) == r.headers["Webhook-Timestamp"]
        with pytest.raises(SignatureMismatch):
            verify("whsec_wrong", r.headers["Webhook-Signature"], r.body, now=int(time.time()))
        with pytest.raises(SignatureMismatch):
            verify(hook["secret"], r.headers["Webhook-Signature"], r.body + b" ", now=stamp)
        with pytest.raises(SignatureMismatch):  # a replay ten minutes later is refused
            verify(hook["secret"], r.headers["Webhook-Signature"], r.body, now=stamp + 600)


def test_a_failing_receiver_is_retried_with_backoff_until_a_2xx_and_every_attempt_is_listed(
    settings, runtime, org_id, api, receiver
):
    hook = register(api, receiver.url, ["declaration.released"])
    receiver.fail(2)
    clear(settings, runtime, org_id)
    pump(settings)

    assert [r.answered for r in receiver.requests] == [500, 500, 200]
    assert len({r.headers["Webhook-Id"] for r in receiver.requests}) == 1  # same delivery
    assert len({r.body for r in receiver.requests}) == 1  # the same bytes every time
    assert [r.headers["Webhook-Attempt"] for r in receiver.requests] == ["1", "2", "3"]
    (delivery,) = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["items"]
    assert delivery["state"] == "delivered" and delivery["attempt_count"] == 3
    assert delivery["id"] == receiver.requests[0].headers["Webhook-Id"]
    assert delivery["event_id"] == receiver.requests[0].json["id"]
    attempts = delivery["attempts"]
    assert [a["http_status"] for a in attempts] == [500, 500, 200]
    assert attempts[0]["error"] == "HTTP 500: receiver is down" and attempts[2]["error"] is None
    assert attempts[0]["at"] < attempts[1]["at"] < attempts[2]["at"]


def test_a_delivery_is_given_up_after_its_max_age_and_marked_failed(
    settings, runtime, org_id, api, receiver
):
    settings = replace(settings, webhook_max_age_seconds=0.3)
    hook = register(api, receiver.url, ["declaration.accepted"])
    receiver.fail(1000)
    _declared(runtime, org_id)
    pump(settings)
    (delivery,) = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["items"]
    assert delivery["state"] == "failed" and delivery["attempt_count"] >= 2
    assert delivery["last_error"].startswith("gave up after")
    assert len(receiver.requests) == delivery["attempt_count"]


def test_an_unreachable_receiver_is_an_error_on_the_attempt_not_a_crash(
    settings, runtime, org_id, api, receiver
):
    url = receiver.url
    receiver.close()  # nobody listens there any more
    hook = register(api, url, ["declaration.accepted"])
    _declared(runtime, org_id)
    settings = replace(settings, webhook_max_age_seconds=0.2)
    pump(settings)
    (delivery,) = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["items"]
    assert delivery["state"] == "failed"
    assert delivery["attempts"][0]["http_status"] is None
    assert "ConnectError" in delivery["attempts"][0]["error"]


def test_a_delivery_runs_once_however_often_its_job_runs_and_a_lost_job_comes_back(
    settings, runtime, org_id, api, receiver
):
    register(api, receiver.url, ["declaration.accepted"])
    _declared(runtime, org_id)
    queue = delivery_queue(settings)
    assert webhook_pass(settings) == 1
    (job_id,) = queue.job_ids
    assert job_id.startswith("webhook-whd_")
    assert webhook_pass(settings) == 0  # waiting in the queue: not enqueued twice
    queue.connection.flushdb()  # Redis lost it
    engine = get_engine(settings.db_url)
    with engine.begin() as conn:  # ... and the lease ran out
        conn.execute(
            t.webhook_deliveries.update().values(next_attempt_at=t.webhook_deliveries.c.created_at)
        )
    assert webhook_pass(settings) == 1 and queue.job_ids == [job_id]
    delivery_id = job_id.removeprefix("webhook-")
    cfg = webhook_config(settings)
    with httpx.Client(timeout=2) as http:
        outcomes = [send(engine, cfg, delivery_id, http).result for _ in range(3)]
    assert outcomes == ["delivered", "skipped", "skipped"]
    assert len(receiver.requests) == 1


def test_a_webhook_gets_only_the_statuses_it_chose(settings, runtime, org_id, api, receiver):
    register(api, receiver.url, ["declaration.released", "declaration.rejected"])
    clear(settings, runtime, org_id)
    pump(settings)
    assert [r.json["data"]["status"] for r in receiver.requests] == ["released"]


def test_registration_refuses_bad_input_with_every_problem_and_its_field(api):
    resp = api.post("/api/v1/webhooks", json={"url": "ftp://x.example/h", "events": ["nope", 3]})
    assert resp.status_code == 422
    body = resp.get_json()
    assert resp.mimetype == "application/problem+json"
    assert [(e["path"], e["code"]) for e in body["errors"]] == [
        ("/url", "webhook.url.scheme"),
        ("/events/0", "webhook.events.unknown"),
        ("/events/1", "webhook.events.unknown"),
    ]
    cases = {
        "no url": ({"events": STATUS_CHANGED}, "/url"),
        "no host": ({"url": "http:///x", "events": STATUS_CHANGED}, "/url"),
        "credentials": ({"url": "https://u:p@x.example/", "events": STATUS_CHANGED}, "/url"),
        "bad port": ({"url": "http://x.example:99999/", "events": STATUS_CHANGED}, "/url"),
        "no events": ({"url": "https://x.example/"}, "/events"),
        "empty events": ({"url": "https://x.example/", "events": []}, "/events"),
        "surrogate": (
            {"url": "https://x.example/", "events": STATUS_CHANGED, "description": "\ud800"},
            "/description",
        ),
        "extra": (
            {"url": "https://x.example/", "events": STATUS_CHANGED, "org_id": "x"},
            "/org_id",
        ),
    }
    for name, (payload, path) in cases.items():
        resp = api.post("/api/v1/webhooks", json=payload)
        assert resp.status_code == 422, name
        assert [e["path"] for e in resp.get_json()["errors"]] == [path], name
    assert api.post("/api/v1/webhooks", data="x", content_type="text/plain").status_code == 400
    assert api.post("/api/v1/webhooks", json=["https://x.example/"]).status_code == 400
    assert api.get("/api/v1/webhooks").get_json()["items"] == []


def test_another_organisations_webhooks_are_invisible_and_it_never_gets_our_events(
    settings, runtime, org_id, api, other, receiver
):
    ours = register(api, "https://ours.example/hook")
    theirs = register(other, receiver.url)
    for method, path in [
        ("get", f"/api/v1/webhooks/{ours['id']}"),
        ("delete", f"/api/v1/webhooks/{ours['id']}"),
        ("get", f"/api/v1/webhooks/{ours['id']}/deliveries"),
        ("post", f"/api/v1/webhooks/{ours['id']}/test"),
        ("get", "/api/v1/webhooks/whk_nonexistent"),
    ]:
        resp = getattr(other, method)(path)
        assert resp.status_code == 404, (method, path)
        assert "ours.example" not in resp.get_data(as_text=True)
    assert [w["id"] for w in other.get("/api/v1/webhooks").get_json()["items"]] == [theirs["id"]]
    assert api.get(f"/api/v1/webhooks/{ours['id']}").status_code == 200  # still there
    clear(settings, runtime, org_id)
    webhook_pass(settings)
    assert receiver.requests == []
    assert other.get("/api/v1/events").get_json()["events"] == []


def test_a_deleted_webhook_gets_nothing_more_and_its_waiting_deliveries_are_cancelled(
    settings, runtime, org_id, api, receiver
):
    hook = register(api, receiver.url)
    _declared(runtime, org_id)
    webhook_pass(settings)  # a delivery is created and enqueued, not yet sent
    assert api.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 204
    assert api.get(f"/api/v1/webhooks/{hook['id']}").status_code == 404
    assert api.delete(f"/api/v1/webhooks/{hook['id']}").status_code == 404
    clear(settings, runtime, org_id)
    pump(settings)
    assert receiver.requests == []
    with get_engine(settings.db_url).connect() as conn:
        states = conn.execute(select(t.webhook_deliveries.c.state)).scalars().all()
    assert states == ["cancelled"]


def test_the_test_endpoint_sends_a_signed_ping(settings, api, receiver):
    hook = register(api, receiver.url)
    resp = api.post(f"/api/v1/webhooks/{hook['id']}/test")
    assert resp.status_code == 202
    pump(settings)
    (ping,) = receiver.requests
    assert ping.json["type"] == "webhook.ping" and ping.json["data"]["webhook_id"] == hook["id"]
    verify(hook["secret"], ping.headers["Webhook-Signature"], ping.body, now=int(time.time()))
    (delivery,) = api.get(f"/api/v1/webhooks/{hook['id']}/deliveries").get_json()["items"]
    assert delivery["id"] == resp.get_json()["delivery_id"] and delivery["event_id"] is None


def test_the_events_feed_pages_through_the_same_events_in_order_and_resumes(
    settings, runtime, org_id, api, receiver
):
    register(api, receiver.url)
    first, _ = clear(settings, runtime, org_id)
    second, _ = clear(settings, runtime, org_id)
    pump(settings)
    seen: list[dict] = []  # type: ignore[type-arg]
    after = ""
    for _ in range(10):
        page = api.get(f"/api/v1/events?limit=2&after={after}").get_json()
        seen += page["events"]
        after = page["next"]
        if not page["has_more"]:
            break
    assert [(e["data"]["declaration_id"], e["data"]["status"]) for e in seen] == [
        (first, "accepted"),
        (first, "under_review"),
        (first, "released"),
        (second, "accepted"),
        (second, "under_review"),
        (second, "released"),
    ]
    ids = [e["id"] for e in seen]
    assert ids == sorted(ids, key=lambda i: int(i.removeprefix("evt_")))
    assert ids == [r.json["id"] for r in receiver.requests]  # pushed and pulled alike
    assert seen == [r.json for r in receiver.requests]
    idle = api.get(f"/api/v1/events?after={after}").get_json()
    assert idle == {"events": [], "next": after, "has_more": False}
    resumed = api.get(f"/api/v1/events?after={ids[2]}&limit=100").get_json()
    assert [e["id"] for e in resumed["events"]] == ids[3:]
    for bad in ("x", "evt_", "evt_-1", "1" * 30):
        resp = api.get(f"/api/v1/events?after={bad}")
        assert resp.status_code == 400 and resp.get_json()["errors"][0]["path"] == "?after"
    assert api.get("/api/v1/events?limit=many").status_code == 400


def test_concurrent_fan_outs_and_a_replayed_insert_never_make_a_second_delivery(
    settings, runtime, org_id, api, receiver
):
    register(api, receiver.url)
    for _ in range(3):
        clear(settings, runtime, org_id)
    engine = get_engine(settings.db_url)
    cfg = webhook_config(settings)
    with ThreadPoolExecutor(4) as pool:
        created = [i for ids in pool.map(lambda _: fan_out(engine, cfg), range(4)) for i in ids]
    assert len(created) == 9  # 3 declarations x accepted, under_review, released
    with engine.begin() as conn:
        rows = conn.execute(select(t.webhook_deliveries)).mappings().all()
        again = {**rows[0], "id": "whd_replayed"}
        insert_deliveries(conn, [again])  # the same (webhook, event) once more: ignored
        count = conn.execute(select(func.count()).select_from(t.webhook_deliveries)).scalar()
    assert len({r["event_id"] for r in rows}) == len(rows) == count == 9


def test_a_webhook_pass_with_redis_gone_creates_deliveries_and_does_not_raise(
    settings, runtime, org_id, api, receiver
):
    register(api, receiver.url)
    _declared(runtime, org_id)
    gone = replace(settings, redis_url="redis://127.0.0.1:1/0")
    assert webhook_pass(gone) == 0  # logged; the relay goes on with the dispatches
    pump(settings)  # Redis is back: the delivery waiting in the database goes out
    assert [r.json["data"]["status"] for r in receiver.requests] == ["accepted"]
