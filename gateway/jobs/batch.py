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
from gateway.services.batch import process_chunk
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


def job_id(batch_id: str, chunk: int) -> str:
    return f"batch-{batch_id}-{chunk}"


def batch_queue(settings: Settings, connection: Redis | None = None) -> Queue:
    return Queue(
        settings.batch_queue_name,
        connection=connection or redis_connection(settings),
        serializer=JSONSerializer,
        default_timeout=settings.batch_job_timeout,
    )


def enqueue_chunks(queue: Queue, chunks: list[tuple[str, int]], timeout: int) -> None:
    """One job per chunk under a deterministic id; ids are all it carries."""
    if chunks:
        queue.enqueue_many(
            [
                Queue.prepare_data(
                    BATCH_JOB,
                    args=(b, c),
                    job_id=job_id(b, c),
                    timeout=timeout,
                    result_ttl=60,
                    failure_ttl=86400,
                )
                for b, c in chunks
            ]
        )


def ring(settings: Settings, batch_id: str, chunks: int) -> None:
    """Enqueue after the commit, best effort: if Redis is down the relay enqueues them."""
    try:
        enqueue_chunks(
            batch_queue(settings),
            [(batch_id, c) for c in range(chunks)],
            settings.batch_job_timeout,
        )
    except Exception as exc:
        log.warning("batch doorbell failed (%s); the relay will enqueue %s", exc, batch_id)


def batch_job(batch_id: str, chunk: int) -> str:
    """Declare the pending items of one chunk (ids in; the database is the record)."""
    settings = load_settings()
    outcome = process_chunk(
        runtime(settings), batch_id, chunk, batch_limits(settings), settings.lease_seconds
    )
    log.info("batch %s: %s", batch_id, outcome)
    return outcome


def _waiting(queue: Queue, chunks: list[tuple[str, int]]) -> set[tuple[str, int]]:
    pipe = queue.connection.pipeline()
    for b, c in chunks:
        pipe.hget(Job.key_for(job_id(b, c)), "status")
    return {
        chunk
        for chunk, status in zip(chunks, pipe.execute(), strict=True)
        if status in (b"queued", "queued")
    }


def requeue_batches(settings: Settings, connection: Redis | None = None) -> int:
    """The relay's sweep: enqueue unfinished chunks that no worker holds and whose job is
    not waiting in the queue; returns how many were enqueued. The relay passes its Redis
    ``connection`` (a new one per pass costs more than the pass)."""
    engine = get_engine(settings.db_url)
    at = repo.now()
    with engine.connect() as conn:
        due = store.due_chunks(conn, at, 100)
    if not due:
        return 0
    queue = batch_queue(settings, connection)
    waiting = _waiting(queue, due)
    todo = [c for c in due if c not in waiting]
    enqueue_chunks(queue, todo, settings.batch_job_timeout)
    with engine.begin() as conn:
        store.postpone_chunks(conn, due, at + timedelta(seconds=settings.lease_seconds))
    return len(todo)
