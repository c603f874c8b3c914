"""GET /metrics (Prometheus): HTTP counters of the gateway processes, and business numbers
read from the database and Redis at scrape time.

HTTP counters are per process; under gunicorn (several workers) the launcher sets
PROMETHEUS_MULTIPROC_DIR and every worker writes its counters to files there, which any
worker sums on a scrape. The business numbers (queue depth, dispatches, deliveries,
receipts, declarations, outages) come from the shared stores, so they are right whichever
process answers and whatever the workers and the relay do.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

from flask import Blueprint, Response, current_app
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector
from redis import Redis
from rq import Queue
from rq.registry import FailedJobRegistry, StartedJobRegistry
from sqlalchemy import Engine

from gateway import doorbell
from gateway.api.instrument import LATENCY, REQUESTS
from gateway.persistence import repository as repo
from gateway.persistence import stats
from gateway.persistence.outages import open_notices
from gateway.worker_queues import WorkerQueues

bp = Blueprint("metrics", __name__)


class BusinessCollector(Collector):
    """Collects at scrape time from the database and Redis; a store that is down shows as
    ``gateway_metrics_source_up{source=...} 0`` instead of failing the scrape."""

    def __init__(
        self, engine: Engine, redis: Callable[[], Redis], queue_name: str, ttl: float
    ) -> None:
        self.engine, self.redis, self.queue_name, self.ttl = engine, redis, queue_name, ttl
        self._lock = threading.Lock()
        self._last: tuple[float, list[Metric]] | None = None

    def collect(self) -> Iterator[Metric]:
        """The numbers, read again when older than ``ttl`` (scrapes from several Prometheus
        servers, or a burst of them, cost the database one read)."""
        with self._lock:
            if self._last is None or time.monotonic() - self._last[0] >= self.ttl:
                self._last = (time.monotonic(), list(self._gather()))
            return iter(self._last[1])

    def _gather(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "gateway_metrics_source_up", "1 when the store answered this scrape", labels=["source"]
        )
        for source, gather in (("database", self._database), ("redis", self._redis)):
            try:
                metrics = list(gather())
            except Exception:  # a down store is a reading, not a failed scrape
                up.add_metric([source], 0)
                continue
            up.add_metric([source], 1)
            yield from metrics
        yield up

    def _redis(self) -> Iterator[Metric]:
        """Per delivery queue: the shared one and each live worker's own (worker_queues)."""
        conn = self.redis()
        slots = WorkerQueues(conn, self.queue_name, 180, ttl=0).live()
        jobs = GaugeMetricFamily(
            "gateway_queue_jobs", "rq jobs by queue and state", labels=["queue", "state"]
        )
        depth = GaugeMetricFamily(
            "gateway_queue_depth", "rq jobs waiting in the queue", labels=["queue"]
        )
        for name in dict.fromkeys([self.queue_name, *slots]):
            queue = Queue(name, connection=conn)
            waiting = queue.count
            jobs.add_metric([name, "queued"], waiting)
            for state, registry in (
                ("started", StartedJobRegistry(queue=queue)),
                ("failed", FailedJobRegistry(queue=queue)),
            ):
                jobs.add_metric([name, state], registry.get_job_count(cleanup=False))
            depth.add_metric([name], waiting)
        yield depth
        yield jobs
        yield GaugeMetricFamily(
            "gateway_doorbell_rung",
            "dispatches rung after their commit and not yet made into jobs by the relay "
            "(grows while the relay is down)",
            value=conn.llen(doorbell.KEY),
        )

    def _database(self) -> Iterator[Metric]:
        at = repo.now()
        with self.engine.connect() as conn:
            dispatches = stats.dispatch_counts(conn)
            oldest = stats.oldest_waiting(conn)
            receipts = stats.receipt_counts(conn)
            declarations = stats.declaration_counts(conn)
            notices = open_notices(conn, at)
        yield from _dispatch_metrics(dispatches, oldest, at)
        received = CounterMetricFamily(
            "gateway_receipts", "receipts received", labels=["authority", "code"]
        )
        for authority, code, n in receipts:
            received.add_metric([authority, code], n)
        yield received
        by_status = GaugeMetricFamily(
            "gateway_declarations", "declarations by type and status", labels=["type", "status"]
        )
        for msg_type, status, n in declarations:
            by_status.add_metric([msg_type, status], n)
        yield by_status
        outage = GaugeMetricFamily(
            "gateway_outage_active", "1 while a planned outage is on", labels=["authority"]
        )
        active = {n.authority for n in notices if n.covers(at)}
        for authority in ("customs", "inspection", "port"):
            outage.add_metric([authority], int(authority in active))
        yield outage


def _dispatch_metrics(
    rows: list[tuple[str, str, str, int, int]], oldest: dict[str, datetime], at: datetime
) -> Iterator[Metric]:
    labels = ["authority", "kind"]
    by_state = GaugeMetricFamily(
        "gateway_dispatches", "dispatches by authority, kind and state", labels=[*labels, "state"]
    )
    delivered = CounterMetricFamily(
        "gateway_deliveries", "dispatches delivered (sent) by authority and kind", labels=labels
    )
    attempts = CounterMetricFamily(
        "gateway_delivery_attempts", "delivery attempts made, by authority and kind", labels=labels
    )
    totals: dict[tuple[str, str], list[int]] = {}
    for authority, kind, state, n, tries in rows:
        by_state.add_metric([authority, kind, state], n)
        sent_attempts = totals.setdefault((authority, kind), [0, 0])
        sent_attempts[0] += n if state == "sent" else 0
        sent_attempts[1] += tries
    for (authority, kind), (sent, tries) in sorted(totals.items()):
        delivered.add_metric([authority, kind], sent)
        attempts.add_metric([authority, kind], tries)
    age = GaugeMetricFamily(
        "gateway_dispatch_oldest_waiting_seconds",
        "age of the oldest dispatch not yet sent, per authority",
        labels=["authority"],
    )
    for authority, made in sorted(oldest.items()):
        age.add_metric([authority], max(0.0, (at - made).total_seconds()))
    yield from (by_state, delivered, attempts, age)


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        MultiProcessCollector(registry)
    else:
        registry.register(REQUESTS)
        registry.register(LATENCY)
    business = current_app.extensions.get("gateway.business_metrics")
    if business is None:
        settings = current_app.config["GATEWAY_SETTINGS"]
        business = current_app.extensions["gateway.business_metrics"] = BusinessCollector(
            current_app.extensions["gateway.runtime"]().engine,
            current_app.extensions["gateway.redis"],
            settings.queue_name,
            settings.metrics_cache_seconds,
        )
    registry.register(business)
    return registry


@bp.get("/metrics")
def metrics() -> Response:
    """The Prometheus text exposition of every metric (no authentication: bind it privately)."""
    started = time.perf_counter()
    body: Any = generate_latest(_registry())
    resp = Response(body, mimetype=None, content_type=CONTENT_TYPE_LATEST)
    resp.headers["X-Scrape-Seconds"] = f"{time.perf_counter() - started:.4f}"
    return resp
