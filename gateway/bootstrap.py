"""The one place that knows the concrete classes: builds a Runtime from Settings."""

from __future__ import annotations

import logging
import os
from functools import cache
from pathlib import Path

from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from adapters.customs import CustomsClient
from adapters.transport import HttpTransport
from gateway.persistence.database import get_engine
from gateway.services.keyring import KeyRing
from gateway.services.runtime import Runtime
from gateway.settings import Settings
from gateway.xml.parsing import ParseLimits
from signing.keys import TrustStore
from signing.policy import policy_by_name

log = logging.getLogger(__name__)
DELIVER_JOB = "gateway.jobs.delivery.deliver_job"


def declarant_key_paths(settings: Settings) -> tuple[Path, Path]:
    """Where the demo organisation's (test) signing key and certificate live."""
    return settings.keys_path / "declarant.key", settings.keys_path / "declarant.crt"


def redis_connection(settings: Settings) -> Redis:
    return Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=2)


def delivery_queue(settings: Settings) -> Queue:
    return Queue(
        settings.queue_name,
        connection=redis_connection(settings),
        serializer=JSONSerializer,
        default_timeout=settings.job_timeout,
    )


def enqueue_deliveries(queue: Queue, dispatch_ids: list[str], job_timeout: int) -> None:
    """Enqueue one job per dispatch with a deterministic id; ids only, no payloads."""
    if not dispatch_ids:
        return
    jobs = [
        Queue.prepare_data(
            DELIVER_JOB,
            args=(d,),
            job_id=f"deliver-{d}",
            timeout=job_timeout,
            result_ttl=60,
            failure_ttl=86400,
        )
        for d in dispatch_ids
    ]
    queue.enqueue_many(jobs)


def build_runtime(settings: Settings) -> Runtime:
    """Everything the use cases need, loaded once: keys, trust stores, clients, engine."""
    transport = HttpTransport(settings.http_connect_timeout, settings.http_read_timeout)
    customs = CustomsClient(settings.customs_endpoint, settings.customs_dxp_id, transport)
    queue = delivery_queue(settings)
    engine = get_engine(settings.db_url)

    def ring(dispatch_ids: list[str]) -> None:
        try:
            enqueue_deliveries(queue, dispatch_ids, settings.job_timeout)
        except Exception as exc:
            log.warning(
                "doorbell failed (%s); the relay will enqueue %d dispatch(es)",
                type(exc).__name__,
                len(dispatch_ids),
            )

    return Runtime(
        engine=engine,
        limits=ParseLimits(max_bytes=settings.max_body_bytes, max_depth=settings.max_xml_depth),
        keys=KeyRing(engine),
        receipt_policy=policy_by_name(settings.receipt_policy),
        clients={"customs": customs},
        trust={"customs": TrustStore.from_pem_files([settings.path(settings.customs_cert)])},
        senders={settings.customs_dxp_id: "customs"},
        lease_seconds=settings.lease_seconds,
        doorbell_grace=settings.doorbell_grace,
        retry_base_seconds=settings.retry_base_seconds,
        retry_max_seconds=settings.retry_max_seconds,
        ring=ring,
    )


@cache
def _runtime_for(settings: Settings, pid: int) -> Runtime:
    del pid  # part of the cache key: a forked child builds its own engine and clients
    return build_runtime(settings)


def runtime(settings: Settings) -> Runtime:
    """This process's Runtime for ``settings`` (rebuilt after a fork)."""
    return _runtime_for(settings, os.getpid())
