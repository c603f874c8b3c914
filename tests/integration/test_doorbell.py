"""The doorbell: commits ring into one Redis list; the relay makes delivery jobs of what
rang, at once while the workers are idle, in full jobs while they are busy."""

from __future__ import annotations

from dataclasses import replace

import redis
from rq import Queue
from rq.serializers import JSONSerializer

from gateway import doorbell
from gateway.bootstrap import build_runtime, redis_connection
from gateway.examples import fresh_ceb621
from gateway.jobs.relay import _coalescer
from gateway.services.declare import declare
from gateway.settings import Settings


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _bell(redis_url: str, waiting: int, clock: Clock) -> tuple[doorbell.Coalescer, list[list[str]]]:
    jobs: list[list[str]] = []
    bell = doorbell.Coalescer(
        redis.Redis.from_url(redis_url),
        lambda ids: jobs.extend(ids[i : i + 20] for i in range(0, len(ids), 20)),
        lambda: waiting,
        batch=20,
        idle_below=2,
        hold_seconds=0.25,
        clock=clock,
    )
    return bell, jobs


def test_while_the_workers_are_idle_a_ring_is_enqueued_at_once(settings: Settings):
    bell, jobs = _bell(settings.redis_url, waiting=0, clock=Clock())
    doorbell.ring(redis.Redis.from_url(settings.redis_url), ["dsp_a", "dsp_b"])
    assert bell.collect(1.0) == 2
    assert bell.flush() == 2
    assert jobs == [["dsp_a", "dsp_b"]]
    assert bell.collect(0.01) == 0 and bell.flush() == 0


def test_while_the_workers_are_busy_rings_wait_for_full_jobs_or_their_hold(settings: Settings):
    clock = Clock()
    bell, jobs = _bell(settings.redis_url, waiting=5, clock=clock)
    conn = redis.Redis.from_url(settings.redis_url)
    ids = [f"dsp_{n:03d}" for n in range(45)]
    for n in range(0, 45, 3):  # fifteen commits of three dispatches
        doorbell.ring(conn, ids[n : n + 3])
    doorbell.ring(conn, ids[:3])  # rung twice: enqueued once
    assert bell.collect(1.0) == 48
    assert bell.flush() == 40
    assert jobs == [ids[:20], ids[20:40]]
    clock.now += 0.1
    assert bell.flush() == 0  # five held, the hold not over
    clock.now += 0.2
    assert bell.flush() == 5
    assert jobs[-1] == ids[40:]
    assert bell.held == {} and bell.since is None


def test_a_commits_ring_becomes_a_delivery_job_through_the_relay(settings: Settings, org_id: str):
    rt = build_runtime(settings)
    try:
        accepted = declare(rt, org_id, fresh_ceb621(), "application/xml")
    finally:
        rt.engine.dispose()
    queue = Queue(
        settings.queue_name, connection=redis_connection(settings), serializer=JSONSerializer
    )
    assert queue.count == 0  # rung, not yet enqueued
    bell = _coalescer(replace(settings, workers=1), queue)
    assert bell.collect(1.0) == 1 and bell.flush() == 1
    (job,) = [queue.fetch_job(j) for j in queue.job_ids]
    assert job is not None and len(job.args) == 1 and job.args[0].startswith("dsp_")
    assert accepted.message_id
