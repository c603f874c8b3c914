"""Rate limits per API key, counted in the real Redis: a clear 429 with Retry-After, other
keys and the probes untouched, receipts on their own limit, and no 5xx when Redis is gone."""

from __future__ import annotations

import time
from dataclasses import replace

import pytest
import redis

from gateway import create_app
from gateway.provisioning import ensure_demo_org
from gateway.services.accounts import issue_key
from gateway.settings import Settings
from tests.e2e.stack import free_port


def _get(client, key: str, path: str = "/api/v1/declarations"):  # type: ignore[no-untyped-def]
    return client.get(path, headers={"Authorization": f"Bearer {key}"})


@pytest.fixture
def keys(settings: Settings, org_id: str) -> tuple[str, str]:
    from gateway.persistence.database import get_engine

    other = issue_key(get_engine(settings.db_url), org_id, "seller", name="other").secret
    return ensure_demo_org(settings), other


def test_a_key_over_its_limit_gets_a_429_problem_with_retry_after(
    settings: Settings, keys: tuple[str, str]
):
    key, other = keys
    client = create_app(replace(settings, rate_limit="3/minute")).test_client()
    assert [_get(client, key).status_code for _ in range(3)] == [200, 200, 200]
    refused = _get(client, key)
    assert refused.status_code == 429
    assert refused.mimetype == "application/problem+json"
    problem = refused.get_json()
    assert problem["type"] == "urn:single-window:problem:rate-limited"
    assert problem["status"] == 429 and problem["limit"] == "3 per 1 minute"
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    assert problem["retry_after"] == int(refused.headers["Retry-After"])
    # Another key of the same organisation has its own bucket; the probes are never limited.
    assert _get(client, other).status_code == 200
    assert {client.get("/healthz").status_code for _ in range(10)} == {200}
    # (readiness is 503 here, no authority runs: what matters is that it is never 429)
    assert 429 not in {client.get("/readyz").status_code for _ in range(10)}
    assert {client.get("/metrics").status_code for _ in range(10)} == {200}


def test_the_count_is_shared_through_redis_by_every_gateway_process(
    settings: Settings, keys: tuple[str, str]
):
    limited = replace(settings, rate_limit="4/minute")
    first, second = create_app(limited).test_client(), create_app(limited).test_client()
    assert [_get(c, keys[0]).status_code for c in (first, second, first, second)] == [200] * 4
    assert _get(second, keys[0]).status_code == 429
    assert _get(first, keys[0]).status_code == 429


def test_unknown_keys_are_limited_and_refused_401(settings: Settings, keys: tuple[str, str]):
    client = create_app(replace(settings, rate_limit="2/minute")).test_client()
    codes = [_get(client, "swg_not-a-key").status_code for _ in range(3)]
    assert codes == [401, 401, 429]
    assert _get(client, keys[0]).status_code == 200


def test_receipts_have_their_own_limit_and_do_not_use_a_keys_budget(
    settings: Settings, keys: tuple[str, str]
):
    client = create_app(
        replace(settings, rate_limit="2/minute", rate_limit_receipts="3/minute")
    ).test_client()
    codes = [client.post("/api/v1/receipts", data=b"<x/>").status_code for _ in range(4)]
    assert codes[:3] == [400, 400, 400] and codes[3] == 429
    assert [_get(client, keys[0]).status_code for _ in range(2)] == [200, 200]


def test_an_empty_limit_turns_the_limiter_off(settings: Settings, keys: tuple[str, str]):
    app = create_app(replace(settings, rate_limit="", rate_limit_receipts=""))
    assert "gateway.limiter" not in app.extensions
    client = app.test_client()
    assert {_get(client, keys[0]).status_code for _ in range(30)} == {200}


def test_without_redis_requests_still_succeed_and_are_counted_in_memory(
    settings: Settings, keys: tuple[str, str]
):
    gone = replace(settings, rate_limit="3/minute", redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = create_app(gone).test_client()
    codes = [_get(client, keys[0]).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]


def test_a_malformed_limit_is_refused_when_the_app_starts(settings: Settings):
    with pytest.raises(ValueError, match="GATEWAY_RATE_LIMIT"):
        create_app(replace(settings, rate_limit="lots per second"))


def test_the_openapi_document_describes_403_and_429(settings: Settings):
    doc = create_app(settings).test_client().get("/api/v1/openapi.json").get_json()
    submit = doc["paths"]["/api/v1/declarations"]["post"]["responses"]
    assert {"401", "403", "429"} <= set(submit)
    assert "Retry-After" in submit["429"]["headers"]
    assert "429" not in doc["paths"]["/healthz"]["get"]["responses"]


def _counted(redis_url: str) -> int:
    """Hits the store has counted, over every limiter window it holds."""
    store = redis.Redis.from_url(redis_url)
    return sum(int(store.get(k) or 0) for k in store.scan_iter("*gateway-rl*"))


def test_a_refused_key_is_refused_again_without_asking_the_store(
    settings: Settings, keys: tuple[str, str]
):
    """Once the limiter has refused a key, the rest of its window is refused before the
    limiter runs: the flood's later requests cost no round trip and count nothing more."""
    client = create_app(replace(settings, rate_limit="3/minute")).test_client()
    assert [_get(client, keys[0]).status_code for _ in range(4)] == [200, 200, 200, 429]
    counted = _counted(settings.redis_url)
    again = [_get(client, keys[0]) for _ in range(20)]
    assert {r.status_code for r in again} == {429}
    assert _counted(settings.redis_url) == counted  # not one more hit reached Redis
    assert {r.get_json()["limit"] for r in again} == {"3 per 1 minute"}
    assert all(1 <= int(r.headers["Retry-After"]) <= 60 for r in again)
    assert all(r.headers.get("X-Request-Id") for r in again)  # answered like any other
    assert _get(client, keys[1]).status_code == 200  # another key of the same organisation
    assert client.get("/healthz").status_code == 200


def test_a_known_refusal_ends_no_later_than_its_window(settings: Settings, keys: tuple[str, str]):
    client = create_app(replace(settings, rate_limit="2/second")).test_client()
    codes = [_get(client, keys[0]).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
    time.sleep(1.1)  # the one-second window is over: the key is served again at once
    assert _get(client, keys[0]).status_code == 200
