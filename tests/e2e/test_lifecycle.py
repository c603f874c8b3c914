"""`make run` as an operator lives with it: it stops cleanly and restarts with its data."""

from __future__ import annotations

import os
import signal

import psutil

from gateway.examples import fresh_ceb621
from tests.e2e.stack import start_stack, wait_for_status


def test_the_stack_stops_on_ctrl_c_and_restarts_with_everything_it_had(tmp_path):
    first = start_stack(tmp_path)
    children = psutil.Process(first.proc.pid).children(recursive=True)
    assert len(children) >= 5  # redis, sandbox, gateway (+ its workers), relay, worker
    with first.client() as client:
        accepted = client.post(
            "/api/v1/declarations",
            content=fresh_ceb621(),
            headers={"Content-Type": "application/xml"},
        ).json()
        wait_for_status(client, accepted["id"], {"released", "closed"})

    os.killpg(first.proc.pid, signal.SIGINT)
    assert first.proc.wait(20) == 0
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert alive == [], f"left running: {alive}"
    assert "stopping" in first.log()

    second = start_stack(tmp_path)
    try:
        with second.client(first.api_key) as client:
            again = client.get(f"/api/v1/declarations/{accepted['id']}")
            assert again.status_code == 200 and again.json()["status"] in ("released", "closed")
            new = client.post(
                "/api/v1/declarations",
                content=fresh_ceb621(),
                headers={"Content-Type": "application/xml"},
            )
            assert new.status_code == 202
            wait_for_status(client, new.json()["id"], {"released", "closed"})
    finally:
        second.stop()
