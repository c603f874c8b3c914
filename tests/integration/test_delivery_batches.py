"""Delivery jobs carry several dispatches: fewer jobs, each dispatch still claimed alone."""

from __future__ import annotations

import threading
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import event, select

from gateway.bootstrap import enqueue_deliveries, redis_connection
from gateway.examples import fresh_ceb621
from gateway.jobs.delivery import deliver_all, warm_worker
from gateway.jobs.relay import relay_once
from gateway.persistence import repository as repo
from gateway.persistence import tables as t
from gateway.services.declare import declare
from gateway.services.runtime import Runtime
from gateway.settings import Settings


def _dispatch_ids(rt: Runtime) -> list[str]:
    with rt.engine.connect() as conn:
        rows = conn.execute(select(t.dispatches.c.id).order_by(t.dispatches.c.created_at))
        return [r[0] for r in rows]


def test_the_relay_enqueues_what_is_due_in_jobs_of_the_batch_size(
    settings: Settings, runtime: Runtime, org_id: str
):
    for _ in range(5):
        declare(runtime, org_id, fresh_ceb621(), "application/xml")
    due = set(_dispatch_ids(runtime))
    assert relay_once(replace(settings, delivery_batch=2)) == 5
    queue = Queue(
        settings.queue_name, connection=redis_connection(settings), serializer=JSONSerializer
    )
    jobs = [queue.fetch_job(j) for j in queue.job_ids]
    assert sorted(len(j.args) for j in jobs if j is not None) == [1, 2, 2]
    assert {d for j in jobs if j is not None for d in j.args} == due
    assert all(j is not None and j.id == f"deliver-{j.args[0]}" for j in jobs)


def test_one_job_delivers_each_dispatch_and_skips_one_another_attempt_holds(
    runtime: Runtime, org_id: str
):
    declare(runtime, org_id, fresh_ceb621(), "application/xml")
    declare(runtime, org_id, fresh_ceb621(), "application/xml")
    first, second = _dispatch_ids(runtime)
    with runtime.engine.begin() as conn:
        assert repo.claim_dispatch(conn, second, repo.now(), timedelta(seconds=30)) == 1
    outcomes = deliver_all(runtime, [first, second])  # nothing listens at the customs URL
    assert [o.result for o in outcomes] == ["retry", "skipped"]


def test_a_warm_worker_keeps_no_database_connection_for_its_horses(settings: Settings, org_id: str):
    rt = warm_worker(settings)
    assert rt.engine.pool.checkedout() == 0 and rt.engine.pool.checkedin() == 0


def test_a_dispatch_waiting_in_another_dispatchs_job_is_not_enqueued_again(
    settings: Settings, runtime: Runtime, org_id: str
):
    for _ in range(3):
        declare(runtime, org_id, fresh_ceb621(), "application/xml")
    ids = _dispatch_ids(runtime)
    queue = Queue(
        settings.queue_name, connection=redis_connection(settings), serializer=JSONSerializer
    )
    enqueue_deliveries(queue, ids, settings.job_timeout, batch=3)  # one job: the doorbell
    assert queue.count == 1
    assert relay_once(settings) == 0  # all three are due, and all three are waiting
    assert queue.count == 1


class _Gate(ThreadingHTTPServer):
    """An authority that holds each request until ``expected`` are in flight (or 5 s), then
    answers 503: how many a job had on the wire at once is ``most``."""

    daemon_threads = True

    def __init__(self, port: int, expected: int) -> None:
        self.expected, self.in_flight, self.most = expected, 0, 0
        self.cond = threading.Condition()
        super().__init__(("127.0.0.1", port), _GateHandler)


class _GateHandler(BaseHTTPRequestHandler):
    server: _Gate

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        gate = self.server
        with gate.cond:
            gate.in_flight += 1
            gate.most = max(gate.most, gate.in_flight)
            gate.cond.notify_all()
            gate.cond.wait_for(lambda: gate.in_flight >= gate.expected, timeout=5)
        self.send_response(503)
        self.send_header("Content-Length", "0")
        self.end_headers()
        with gate.cond:
            gate.in_flight -= 1

    def log_message(self, *_args: object) -> None:
        pass


def test_a_jobs_dispatches_are_on_the_wire_at_once_and_answered_in_order(
    settings: Settings, runtime: Runtime, org_id: str
):
    for _ in range(4):
        declare(runtime, org_id, fresh_ceb621(), "application/xml")
    ids = _dispatch_ids(runtime)
    rt = replace(runtime, retry_base_seconds=30.0, retry_max_seconds=30.0)
    gate = _Gate(settings.sandbox_port, expected=3)
    threading.Thread(target=gate.serve_forever, daemon=True).start()
    try:
        with runtime.engine.begin() as conn:  # the third is another attempt's
            assert repo.claim_dispatch(conn, ids[2], repo.now(), timedelta(seconds=30)) == 1
        outcomes = deliver_all(rt, ids, concurrency=8)
    finally:
        gate.shutdown()
        gate.server_close()
    assert [o.dispatch_id for o in outcomes] == ids
    assert [o.result for o in outcomes] == ["retry", "retry", "skipped", "retry"]
    assert gate.most == 3  # the three it could claim, at once


def test_a_wave_of_a_job_claims_in_one_commit_and_records_its_results_in_one_more(
    runtime: Runtime, org_id: str
):
    for _ in range(4):
        declare(runtime, org_id, fresh_ceb621(), "application/xml")
    ids = _dispatch_ids(runtime)
    commits: list[object] = []

    def count(conn: object) -> None:
        commits.append(conn)

    event.listen(runtime.engine, "commit", count)
    try:  # nothing listens at the customs URL: every attempt is a retry, recorded
        outcomes = deliver_all(runtime, ids, concurrency=2)
    finally:
        event.remove(runtime.engine, "commit", count)
    assert [o.result for o in outcomes] == ["retry"] * 4
    assert len(commits) == 4  # two waves of two; it was two commits per dispatch
    with runtime.engine.connect() as conn:
        rows = conn.execute(select(t.dispatches.c.state, t.dispatches.c.attempts)).all()
        retries = conn.execute(select(t.events.c.kind).where(t.events.c.kind == "send_retry"))
        assert sorted(rows) == [("pending", 1)] * 4 and len(retries.all()) == 4
