"""The rq job that declares a batch's items, its doorbell, and the relay's sweep for
batches whose job was lost (Redis restarted, a worker killed): rq is the doorbell, the
batches table is the record.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from redis import Redis
from rq import Queue
from rq.job import Job
from rq.serializers import JSONSerializer

from gateway.bootstrap import redis_connection, runtime
from gateway.persistence import batches as store
from gateway.persistence import repository as repo
from gateway.persistence.database import get_engine
from gateway.services.batch import process_batch
from gateway.services.batch_reader import BatchLimits
from gateway.settings import Settings, load_settings

log = logging.getLogger(__name__)
BATCH_JOB = "gateway.jobs.batch.batch_job"


def batch_limits(settings: Settings) -> BatchLimits:
    return BatchLimits(
        max_items=settings.batch_max_items,
        max_uncompressed=settings.batch_max_uncompressed_bytes,
        max_item_bytes=settings.max_body_bytes,
    )


def job_id(batch_id: str) -> str:
    return f"batch-{batch_id}"


def batch_queue(settings: Settings, connection: Redis | None = None) -> Queue:
    return Queue(
        settings.batch_queue_name,
        connection=connection or redis_connection(settings),
        serializer=JSONSerializer,
        default_timeout=settings.batch_job_timeout,
    )


def enqueue_batches(queue: Queue, batch_ids: list[str], timeout: int) -> None:
    """One job per batch under a deterministic id; the id is all it carries."""
    if batch_ids:
        queue.enqueue_many(
            [
                Queue.prepare_data(
                    BATCH_JOB,
                    args=(b,),
                    job_id=job_id(b),
                    timeout=timeout,
                    result_ttl=60,
                    failure_ttl=86400,
                )
                for b in batch_ids
            ]
        )


def ring(settings: Settings, batch_id: str) -> None:
    """Enqueue after the commit, best effort: if Redis is down the relay enqueues it."""
    try:
        enqueue_batches(batch_queue(settings), [batch_id], settings.batch_job_timeout)
    except Exception as exc:
        log.warning("batch doorbell failed (%s); the relay will enqueue %s", exc, batch_id)


def batch_job(batch_id: str) -> str:
    """Declare the pending items of ``batch_id`` (ids in; the database is the record)."""
    settings = load_settings()
    outcome = process_batch(
        runtime(settings), batch_id, batch_limits(settings), settings.lease_seconds
    )
    log.info("batch %s: %s", batch_id, outcome)
    return outcome


def _waiting(queue: Queue, batch_ids: list[str]) -> set[str]:
    pipe = queue.connection.pipeline()
    for b in batch_ids:
        pipe.hget(Job.key_for(job_id(b)), "status")
    return {
        b
        for b, status in zip(batch_ids, pipe.execute(), strict=True)
        if status in (b"queued", "queued")
    }


def requeue_batches(settings: Settings) -> int:
    """The relay's sweep: enqueue unfinished batches that no worker holds and whose job is
    not waiting in the queue; returns how many were enqueued."""
    engine = get_engine(settings.db_url)
    at = repo.now()
    with engine.connect() as conn:
        due = store.due_batch_ids(conn, at, 100)
    if not due:
        return 0
    queue = batch_queue(settings)
    todo = [b for b in due if b not in _waiting(queue, due)]
    enqueue_batches(queue, todo, settings.batch_job_timeout)
    with engine.begin() as conn:
        store.postpone_batches(conn, due, at + timedelta(seconds=settings.lease_seconds))
    return len(todo)
