"""The one place that knows the concrete classes: builds a Runtime from Settings."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

from lxml import etree
from redis import Redis
from rq import Queue
from rq.queue import EnqueueData
from rq.serializers import JSONSerializer

from adapters.breaker import CircuitBreaker
from adapters.customs import CustomsClient
from adapters.dxp_client import DxpAuthorityClient
from adapters.inspection import InspectionClient
from adapters.port import PortClient
from adapters.transport import HttpTransport
from gateway import doorbell
from gateway.domain.routing import RoutingRules
from gateway.domain.tax import TaxRates
from gateway.logs import current_request_id
from gateway.persistence.data_keys import DataKeyRing, bind, load_ring
from gateway.persistence.database import get_engine
from gateway.services.keyring import KeyRing
from gateway.services.runtime import Runtime
from gateway.settings import Settings
from gateway.worker_queues import WorkerQueues, as_queues
from gateway.xml.parsing import ParseLimits
from signing.keys import TrustStore, load_signing_key
from signing.policy import default_policy_for_key_type, policy_by_name
from signing.xmldsig import ENGINES, sign_enveloped

log = logging.getLogger(__name__)
DELIVER_JOB = "gateway.jobs.delivery.deliver_job"


def declarant_key_paths(settings: Settings) -> tuple[Path, Path]:
    """Where the demo organisation's (test) signing key and certificate live."""
    return settings.keys_path / "declarant.key", settings.keys_path / "declarant.crt"


def gateway_key_paths(settings: Settings) -> tuple[Path, Path]:
    """The gateway's own identity: it signs the manifests and releases it sends the port."""
    return settings.keys_path / "gateway.key", settings.keys_path / "gateway.crt"


def redis_connection(settings: Settings) -> Redis:
    return Redis.from_url(settings.redis_url, socket_connect_timeout=1, socket_timeout=2)


def delivery_queue(settings: Settings) -> Queue:
    return Queue(
        settings.queue_name,
        connection=redis_connection(settings),
        serializer=JSONSerializer,
        default_timeout=settings.job_timeout,
    )


def delivery_job_id(dispatch_id: str) -> str:
    """The job named after a dispatch: the one it leads, or the one it rides in alone."""
    return f"deliver-{dispatch_id}"


def rides_in_key(dispatch_id: str) -> str:
    """Redis key naming the job a dispatch rides in when it is not that job's first."""
    return f"gateway:deliver:rides-in:{dispatch_id}"


def worker_queues(settings: Settings, connection: Redis | None = None) -> WorkerQueues:
    """The delivery queues of the live workers (one per worker slot), for the relay."""
    return WorkerQueues(connection or redis_connection(settings), settings.queue_name,
                        settings.job_timeout)  # fmt: skip


def enqueue_deliveries(
    target: Queue | WorkerQueues,
    dispatch_ids: list[str],
    job_timeout: int,
    batch: int = 1,
    ride_ttl: int = 120,
) -> None:
    """Enqueue jobs of up to ``batch`` dispatches each, in one Redis round trip; ids only, no
    payloads. A job is named after its first dispatch and gets the job timeout once per
    dispatch it carries; each other dispatch gets a short-lived note of the job it rides in,
    so the relay can tell it is waiting (after ``ride_ttl`` s the relay may enqueue it again:
    harmless, the second attempt finds it claimed or sent). Fewer, larger jobs: the queue's
    own cost (a fork and some 50 Redis commands per job) is paid per batch, not per message.
    Each job goes to the live worker queue with the fewest waiting (``target`` may also be
    one fixed queue)."""
    if not dispatch_ids:
        return
    size = max(1, batch)
    chunks = [dispatch_ids[i : i + size] for i in range(0, len(dispatch_ids), size)]
    request_id = current_request_id()  # the request that caused them, for the logs
    meta = {"request_id": request_id} if request_id else None
    jobs = [
        Queue.prepare_data(
            DELIVER_JOB,
            args=tuple(chunk),
            job_id=delivery_job_id(chunk[0]),
            timeout=job_timeout * len(chunk),
            result_ttl=60,
            failure_ttl=86400,
            meta=meta,
        )
        for chunk in chunks
    ]
    queues = as_queues(target)
    by_queue: dict[str, tuple[Queue, list[EnqueueData]]] = {}
    for job, queue in zip(jobs, queues.spread(len(jobs)), strict=True):
        by_queue.setdefault(queue.name, (queue, []))[1].append(job)
    pipe = queues.connection.pipeline()
    for chunk in chunks:
        for d in chunk[1:]:
            pipe.set(rides_in_key(d), delivery_job_id(chunk[0]), ex=ride_ttl)
    for queue, some in by_queue.values():
        queue.enqueue_many(some, pipeline=pipe)
    pipe.execute()


AUTHORITIES = ("customs", "inspection", "port")
CLIENTS = {"customs": CustomsClient, "inspection": InspectionClient, "port": PortClient}


def _clients(settings: Settings) -> dict[str, DxpAuthorityClient]:
    # A wave sends up to delivery_concurrency at once, possibly all to one authority: keep
    # that many connections alive, not fewer (the rest would be closed after each use).
    transport = HttpTransport(
        settings.http_connect_timeout,
        settings.http_read_timeout,
        max_idle=max(1, settings.delivery_concurrency),
    )
    return {
        name: CLIENTS[name](
            settings.endpoint(name),
            getattr(settings, f"{name}_dxp_id"),
            transport,
            CircuitBreaker(name, settings.breaker_failures, settings.breaker_reset_seconds),
        )
        for name in AUTHORITIES
    }


def _gateway_signer(settings: Settings) -> Callable[[etree._Element], bytes]:
    key = load_signing_key(*gateway_key_paths(settings))
    policy = default_policy_for_key_type(key.key_type)

    def sign(root: etree._Element) -> bytes:
        sign_enveloped(root, key, policy)
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    return sign


class TrustSettingsError(ValueError):
    """An authority's certificate or revoked-serials file cannot be read: said at start."""


def verify_engine(settings: Settings) -> str:
    """The signature check named by the settings; an unknown name stops the start instead
    of refusing every receipt."""
    if settings.verify_engine not in ENGINES:
        raise TrustSettingsError(
            f"GATEWAY_VERIFY_ENGINE: {settings.verify_engine!r} is not one of {', '.join(ENGINES)}"
        )
    return settings.verify_engine


def trust_stores(settings: Settings) -> dict[str, TrustStore]:
    """Each authority's certificates, and the serials revoked for it when configured."""
    out = {}
    for name in AUTHORITIES:
        revoked = getattr(settings, f"{name}_revoked")
        try:
            out[name] = TrustStore.from_pem_files(
                [settings.path(getattr(settings, f"{name}_cert"))],
                revoked=settings.path(revoked) if revoked else None,
            )
        except (OSError, ValueError) as exc:
            setting = f"GATEWAY_{name.upper()}_{'REVOKED' if revoked else 'CERT'}"
            raise TrustSettingsError(f"{setting}: {exc}") from None
    return out


def data_key_ring(settings: Settings) -> DataKeyRing:
    """The keys personal data is sealed with: configured, or kept in the data dir."""
    return load_ring(settings.data_keys, settings.data_keys_file)


def build_runtime(settings: Settings) -> Runtime:
    """Everything the use cases need, loaded once: keys, trust stores, clients, engine."""
    queue = delivery_queue(settings)
    engine = get_engine(settings.db_url)
    bind(engine, data_key_ring(settings), reload=lambda: data_key_ring(settings))

    def ring(dispatch_ids: list[str]) -> None:
        if not dispatch_ids:
            return
        try:
            doorbell.ring(queue.connection, dispatch_ids)  # the relay makes the jobs
        except Exception as exc:  # the relay's sweep enqueues them from the database
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
        verify_engine=verify_engine(settings),
        clients=_clients(settings),
        trust=trust_stores(settings),
        senders={getattr(settings, f"{name}_dxp_id"): name for name in AUTHORITIES},
        lease_seconds=settings.lease_seconds,
        doorbell_grace=settings.doorbell_grace,
        retry_base_seconds=settings.retry_base_seconds,
        retry_max_seconds=settings.retry_max_seconds,
        ring=ring,
        rules=RoutingRules(settings.inspection_prefixes, settings.port_types),
        gateway_dxp_id=settings.gateway_dxp_id,
        sign_as_gateway=_gateway_signer(settings),
        tax_rates=TaxRates.load(settings.tax_rates_path),
        quota_secret=settings.quota_secret_bytes(),
        annual_quota=Decimal(settings.annual_quota),
    )


_RUNTIMES: dict[Settings, Runtime] = {}
_BUILDING = threading.Lock()


def runtime(settings: Settings) -> Runtime:
    """The process's Runtime for ``settings``, built once. A forked child (an rq work horse)
    inherits it warm: keys, schemas, trust stores and clients are fork-safe; the database
    pool is not, so the child drops the inherited connections (see below)."""
    rt = _RUNTIMES.get(settings)
    if rt is None:
        with _BUILDING:  # gunicorn's threads may all ask first at once: build one
            rt = _RUNTIMES.get(settings)
            if rt is None:
                rt = _RUNTIMES[settings] = build_runtime(settings)
    return rt


def _forget_inherited_connections() -> None:
    # Never reuse a parent's database connections in a child (RELIABILITY.md, rq pitfall 11).
    for rt in _RUNTIMES.values():
        rt.engine.dispose(close=False)


os.register_at_fork(after_in_child=_forget_inherited_connections)
