"""Webhooks in the background: the relay's pass (fan out, enqueue due sends) and the rq job.

The relay calls ``webhook_pass`` once per loop. rq is only the doorbell: a job named
``webhook-<delivery id>`` carries the id, the database says what is due, and a delivery
whose job was lost or whose worker died is enqueued again once its lease runs out.
"""

from __future__ import annotations

import logging
from datetime import timedelta

import httpx
from rq import Queue

from gateway.bootstrap import worker_queues
from gateway.domain.webhooks import RetryPolicy
from gateway.persistence import repository as repo
from gateway.persistence import webhooks as store
from gateway.persistence.database import get_engine
from gateway.services.webhook_delivery import WebhookConfig, fan_out, send
from gateway.settings import Settings, load_settings
from gateway.worker_queues import WorkerQueues, as_queues

log = logging.getLogger(__name__)
SEND_JOB = "gateway.jobs.webhooks.send_webhook_job"
BATCH = 500


def webhook_config(s: Settings) -> WebhookConfig:
    """The webhook knobs of ``s``."""
    return WebhookConfig(
        RetryPolicy(
            s.webhook_retry_base_seconds, s.webhook_retry_max_seconds, s.webhook_max_age_seconds
        ),
        lease_seconds=s.lease_seconds,
        connect_timeout=min(s.http_connect_timeout, s.webhook_timeout),
        timeout=s.webhook_timeout,
        settle=s.events_settle_seconds,
    )


def job_id(delivery_id: str) -> str:
    return f"webhook-{delivery_id}"


def enqueue_sends(queue: Queue, delivery_ids: list[str], job_timeout: int) -> None:
    """One job per delivery with a deterministic id; ids only, no payloads."""
    if delivery_ids:
        queue.enqueue_many(
            [
                Queue.prepare_data(
                    SEND_JOB,
                    args=(d,),
                    job_id=job_id(d),
                    timeout=job_timeout,
                    result_ttl=60,
                    failure_ttl=86400,
                )
                for d in delivery_ids
            ]
        )


def _still_queued(queues: WorkerQueues, delivery_ids: list[str]) -> set[str]:
    """Deliveries whose job waits now in a queue a live worker serves (its id in the list):
    enqueueing again would only duplicate."""
    waiting = queues.waiting_ids([job_id(d) for d in delivery_ids])
    return {d for d in delivery_ids if job_id(d) in waiting}


def webhook_pass(settings: Settings, queue: Queue | WorkerQueues | None = None) -> int:
    """Fan out new events and enqueue every due delivery; returns how many were enqueued.
    Never raises: a webhook problem must not stop the relay of the authorities' dispatches.
    The relay passes its own ``queue``, so a pass opens no Redis connection of its own."""
    try:
        engine = get_engine(settings.db_url)
        fan_out(engine, webhook_config(settings))
        at = repo.now()
        with engine.connect() as conn:
            due = store.due_delivery_ids(conn, at, BATCH)
        if not due:
            return 0
        queues = as_queues(queue or worker_queues(settings))
        waiting = _still_queued(queues, due)
        todo = [d for d in due if d not in waiting]
        if todo:
            enqueue_sends(queues.pick(), todo, settings.job_timeout)
        with engine.begin() as conn:
            store.postpone_deliveries(conn, due, at + timedelta(seconds=settings.lease_seconds))
        return len(todo)
    except Exception as exc:  # the next pass tries again; the database still has it all
        log.warning("webhook pass failed: %s: %s", type(exc).__name__, exc)
        return 0


def send_webhook_job(delivery_id: str) -> str:
    """Make one attempt at ``delivery_id``; the result string is for logs only."""
    settings = load_settings()
    cfg = webhook_config(settings)
    timeout = httpx.Timeout(cfg.timeout, connect=cfg.connect_timeout)
    with httpx.Client(timeout=timeout, follow_redirects=False) as http:
        outcome = send(get_engine(settings.db_url), cfg, delivery_id, http)
    log.info("webhook delivery %s: %s (attempt %s)", delivery_id, outcome.result, outcome.attempt)
    return outcome.result
