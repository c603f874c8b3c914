"""Operating the running product: a planned outage announced with the CLI while the sandbox
customs is really down for the same window; JSON logs carry the submission's request id into
its deliveries; /metrics and /readyz answer from gunicorn."""

from __future__ import annotations

import json
from datetime import datetime

import httpx

from gateway.examples import fresh_ceb621
from tests.e2e.stack import Stack, cli, wait_for_status


def test_a_planned_outage_holds_submissions_and_releases_them_with_no_failed_attempt(
    stack: Stack,
):
    announce = [
        "outage",
        "announce",
        "--authority",
        "customs",
        "--start",
        "now",
        "--end",
        "+8s",
        "--json",
    ]
    notice = json.loads(cli(stack, *announce, "--note", "sandbox maintenance"))
    window = {"start": notice["start"], "end": notice["end"]}
    faults = httpx.post(
        stack.sandbox + "/admin/faults", json={"authority": "customs", "outage": window}
    )
    assert faults.status_code == 200 and faults.json()["customs"]["in_outage"]
    try:
        with stack.client() as client:
            resp = client.post(
                "/api/v1/declarations",
                content=fresh_ceb621(),
                headers={"Content-Type": "application/xml", "X-Request-Id": "e2e-outage-1"},
            )
            assert resp.status_code == 202, resp.text
            assert [n["id"] for n in resp.json()["notices"]] == [notice["id"]]
            assert "planned outage of customs" in resp.headers["Warning"]
            assert notice["id"] in client.get("/api/v1/notices").text
            body = wait_for_status(client, resp.json()["id"], {"released", "closed"}, timeout=45)
    finally:
        httpx.post(stack.sandbox + "/admin/faults", json={"authority": "customs", "outage": None})

    customs = [e for e in body["events"] if e["source"] == "customs"]
    assert not [e for e in customs if e["kind"] in ("send_retry", "send_failed")]
    (sent,) = [e for e in customs if e["kind"] == "sent"]
    assert "attempt 1," in sent["info"]
    end = datetime.fromisoformat(notice["end"].replace("Z", "+00:00"))
    assert datetime.fromisoformat(sent["at"].replace("Z", "+00:00")) >= end
    assert "outage_hold" in [e["kind"] for e in customs]

    lines = [json.loads(x) for x in stack.log().splitlines() if x.startswith('{"time"')]
    ours = [x for x in lines if x.get("request_id") == "e2e-outage-1"]
    assert {x["process"] for x in ours} >= {"worker"}
    assert any("sent (attempt 1)" in x["message"] for x in ours)
    assert notice["id"] not in cli(stack, "outage", "list")  # over: no longer listed


def test_metrics_and_readiness_answer_from_the_running_gateway(stack: Stack):
    with stack.client() as client:
        client.get("/api/v1/declarations")
    metrics = httpx.get(stack.base + "/metrics").text
    assert 'gateway_http_requests_total{endpoint="declarations.list_all"' in metrics
    assert 'gateway_metrics_source_up{source="redis"} 1.0' in metrics
    ready = httpx.get(stack.base + "/readyz").json()
    assert ready["failed"] == [] and ready["customs"] == "ok"
