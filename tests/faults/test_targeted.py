"""One fault at a time, small and fast, for what the chaos runs showed: Redis going away
while a job runs, and one receipt delivered several times at once."""

from __future__ import annotations

import base64
import threading
import time
from typing import Any

import httpx
import pytest
from lxml import etree

from adapters.dxp import read_envelope
from gateway.examples import fresh_ceb621
from sandbox.packing import entries
from tests.faults.conftest import POSTGRES_AT_SCALE
from tests.faults.harness import FaultStack

XML = {"Content-Type": "application/xml"}
BACKEND = pytest.mark.parametrize(
    "database_url", ["sqlite", pytest.param("postgres", marks=POSTGRES_AT_SCALE)], indirect=True
)


def _entries(envelope: bytes) -> int:
    """How many receipts one signed DXP envelope from the sandbox carries."""
    return entries(etree.fromstring(read_envelope(etree.fromstring(envelope)).data))


def _declare(stack: FaultStack, docs: int) -> list[str]:
    headers = {"Authorization": f"Bearer {stack.api_key}", **XML}
    resp = httpx.post(
        stack.base + "/api/v1/declarations", content=fresh_ceb621(docs), headers=headers
    )
    assert resp.status_code == 202, resp.text
    return [d["id"] for d in resp.json()["declarations"]]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_redis_restart_while_jobs_run_keeps_the_gateway_up(
    fault_stack: Any, database_url: str
) -> None:
    stack: FaultStack = fault_stack()
    # Slow port answers: the work horses sit in the adapter call while Redis goes away.
    httpx.post(
        stack.sandbox + "/admin/faults", json={"authority": "port", "delay": 2.0}
    ).raise_for_status()
    ids = _declare(stack, 10)
    deadline = time.monotonic() + 30
    while not stack.work_horses() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stack.work_horses(), "no delivery job ever started"
    stack.restart_redis(down_seconds=3)
    time.sleep(5)
    assert stack.gateway_alive(), (
        "the gateway stopped after a Redis restart:\n" + stack.log()[-3000:]
    )
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    for did in ids:
        assert httpx.get(f"{stack.base}/api/v1/declarations/{did}", headers=headers).is_success


@BACKEND
def test_one_receipt_delivered_eight_times_at_once_is_applied_once_without_500(
    fault_stack: Any, database_url: str
) -> None:
    stack: FaultStack = fault_stack()
    # Receipts are never pushed: they wait in the sandbox's poll log for us to replay.
    httpx.post(
        stack.sandbox + "/admin/faults", json={"authority": "customs", "drop_receipts": 1}
    ).raise_for_status()
    rounds = 12
    ids = _declare(stack, rounds)
    envelopes: list[bytes] = []
    # Each list gets three receipts (2, 120, 800); the sandbox packs those due together
    # into one message, so count entries, not messages.
    deadline = time.monotonic() + 30
    while sum(map(_entries, envelopes)) < 3 * rounds and time.monotonic() < deadline:
        got = httpx.get(
            stack.sandbox + "/customs/receipts",
            params={"receiver": "DXPENT0000000001", "after": 0},
        ).json()["receipts"]
        envelopes = [base64.b64decode(r["envelope"]) for r in got]
        time.sleep(0.2)
    assert sum(map(_entries, envelopes)) >= 3 * rounds, len(envelopes)
    answers: list[int] = []
    lock = threading.Lock()

    def push(body: bytes, barrier: threading.Barrier) -> None:
        barrier.wait()
        resp = httpx.post(stack.base + "/api/v1/receipts", content=body, headers=XML, timeout=30)
        with lock:
            answers.append(resp.status_code)

    for body in envelopes:
        barrier = threading.Barrier(8)
        threads = [threading.Thread(target=push, args=(body, barrier)) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
    assert 500 not in answers, sorted(answers)
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    for did in ids:
        body = httpx.get(f"{stack.base}/api/v1/declarations/{did}", headers=headers).json()
        codes = [
            (e["source"], e["code"]) for e in body["events"] if e["kind"] == "receipt" and e["code"]
        ]
        assert len(codes) == len(set(codes)), (did, codes)
