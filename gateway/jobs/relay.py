"""The outbox relay: enqueue due dispatches, and re-enqueue those whose lease expired.

The API rings the doorbell after each commit; this loop is the guarantee behind it. If Redis
lost a job, or a worker died mid-delivery, the database still says the dispatch is due, and
the relay enqueues it again under the same deterministic job id.
"""

from __future__ import annotations

import logging
import time
from datetime import timedelta

import httpx
from rq import Queue

from gateway.bootstrap import (
    delivery_job_id,
    enqueue_deliveries,
    rides_in_key,
    runtime,
    worker_queues,
)
from gateway.doorbell import Coalescer
from gateway.jobs.batch import requeue_batches
from gateway.jobs.webhooks import webhook_pass
from gateway.persistence import repository as repo
from gateway.persistence.database import get_engine
from gateway.services.outages import hold_due
from gateway.services.poll import POLLED_AUTHORITIES, poll_all
from gateway.settings import Settings
from gateway.worker_queues import WorkerQueues, as_queues

log = logging.getLogger(__name__)
BATCH = 500


def _still_queued(target: Queue | WorkerQueues, dispatch_ids: list[str]) -> set[str]:
    """Dispatches whose job is waiting right now (not lost, not started) in a queue a live
    worker serves: the worker will get to them; enqueueing again would only multiply the
    backlog. A dispatch waits in the job named after it, or in the batch job its note names.
    A job waiting in a dead worker's queue is not waiting, nor is one whose hash says
    "queued" while its id is in no queue (a worker killed at the wrong moment): both are
    enqueued again."""
    queues = as_queues(target)
    pipe = queues.connection.pipeline()
    for d in dispatch_ids:
        pipe.get(rides_in_key(d))
    rides = pipe.execute()
    jobs = {d: (delivery_job_id(d), _text(r)) for d, r in zip(dispatch_ids, rides, strict=True)}
    waiting = queues.waiting_ids([j for pair in jobs.values() for j in pair])
    return {d for d, pair in jobs.items() if waiting.intersection(pair)}


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else value or ""


def relay_once(settings: Settings, queue: Queue | WorkerQueues | None = None) -> int:
    """One pass: enqueue every due dispatch that is not already waiting in the queue, and
    every dispatch whose delivery lease expired; returns how many were enqueued. The relay
    loop passes its ``queue``s (a new Redis connection per pass costs more than the pass)."""
    engine = get_engine(settings.db_url)
    at = repo.now()
    hold_due(engine, at)  # planned outages: what would go to a closed authority waits
    with engine.connect() as conn:
        due = repo.due_dispatch_ids(conn, at, BATCH)
    if not due:
        return 0
    queue = queue or worker_queues(settings)
    waiting = _still_queued(queue, due)
    todo = [d for d in due if d not in waiting]
    if todo:
        enqueue_deliveries(queue, todo, settings.job_timeout, settings.delivery_batch)
    with engine.begin() as conn:
        repo.postpone_dispatches(conn, due, at + timedelta(seconds=settings.lease_seconds))
    return len(todo)


def _coalescer(settings: Settings, target: Queue | WorkerQueues) -> Coalescer:
    queues = as_queues(target)
    return Coalescer(
        queues.connection,
        lambda ids: enqueue_deliveries(queues, ids, settings.job_timeout, settings.delivery_batch),
        queues.waiting,
        batch=settings.delivery_batch,
        idle_below=settings.workers,
        hold_seconds=settings.doorbell_hold,
    )


def run_relay(settings: Settings) -> None:
    """Turn doorbell rings into delivery jobs as they come; every ``relay_interval`` sweep
    the database for what is due; every ``poll_interval`` poll the authorities for lost
    receipts. Survives Redis, database and authority outages by retrying."""
    log.info(
        "relay started (every %.2f s; polling every %.1f s)",
        settings.relay_interval,
        settings.poll_interval,
    )
    http = httpx.Client(
        timeout=httpx.Timeout(settings.http_read_timeout, connect=settings.http_connect_timeout)
    )
    endpoints = {a: settings.endpoint(a) for a in POLLED_AUTHORITIES}
    next_poll = time.monotonic() + settings.poll_interval
    next_sweep = time.monotonic()
    queue = worker_queues(settings)  # redis-py reconnects by itself after a Redis restart
    bell = _coalescer(settings, queue)
    while True:
        try:
            bell.collect(next_sweep - time.monotonic())
            bell.flush()
            if time.monotonic() < next_sweep:
                continue
            next_sweep = time.monotonic() + settings.relay_interval
            n = relay_once(settings, queue)
            if n:
                log.info("relay enqueued %d dispatch(es)", n)
            webhook_pass(settings, queue)  # the webhook outbox, fed from the events log
            if requeue_batches(settings, queue.connection):
                log.info("relay re-enqueued unfinished batch(es)")
            if time.monotonic() >= next_poll:
                next_poll = time.monotonic() + settings.poll_interval
                found = poll_all(runtime(settings), http, endpoints)
                if found:
                    log.info("poll recovered %d receipt(s) that were never pushed", found)
        except Exception as exc:  # keep relaying through outages
            log.warning("relay pass failed: %s: %s", type(exc).__name__, exc)
            time.sleep(1.0)
