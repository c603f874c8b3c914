"""Per request: a request id (taken from X-Request-Id when it is sane, else made), bound to
the log context and returned; and the request counted and timed for /metrics.

This runs on every request, so it is kept to a few microseconds: one perf_counter pair, one
dict lookup for the cached metric children, one context variable.
"""

from __future__ import annotations

import logging
import os
import time

from flask import Flask, Response, g, request
from prometheus_client import Counter, Histogram

from gateway.logs import bind, unbind, valid_request_id

log = logging.getLogger("gateway.http")
REQUEST_ID_HEADER = "X-Request-Id"
REQUESTS = Counter(
    "gateway_http_requests",
    "HTTP requests answered, by endpoint, method and status",
    ["endpoint", "method", "status"],
    registry=None,
)
LATENCY = Histogram(
    "gateway_http_request_duration_seconds",
    "time to answer an HTTP request, by endpoint and method",
    ["endpoint", "method"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
    registry=None,
)
_children: dict[tuple[str, str, int], tuple[object, object]] = {}


def _metric_children(endpoint: str, method: str, status: int) -> tuple[object, object]:
    key = (endpoint, method, status)
    found = _children.get(key)
    if found is None:
        found = _children[key] = (
            REQUESTS.labels(endpoint, method, str(status)),
            LATENCY.labels(endpoint, method),
        )
    return found


def _begin() -> None:
    header = request.environ.get("HTTP_X_REQUEST_ID")
    rid = valid_request_id(header) or os.urandom(8).hex()
    g.request_id = rid
    g.ops_hook = (time.perf_counter(), rid, bind(request_id=rid))


def _finish(log_requests: bool) -> object:
    def finish(resp: Response) -> Response:
        hook = g.get("ops_hook")
        if hook is None:  # a hook before ours failed: nothing was started
            return resp
        started, rid, _token = hook
        resp.headers.add(REQUEST_ID_HEADER, rid)
        elapsed = time.perf_counter() - started
        counter, histogram = _metric_children(
            request.endpoint or "unmatched", request.method, resp.status_code
        )
        counter.inc()  # type: ignore[attr-defined]
        histogram.observe(elapsed)  # type: ignore[attr-defined]
        if log_requests:
            log.info(
                "%s %s %d %.1f ms", request.method, request.path, resp.status_code, elapsed * 1000
            )
        return resp

    return finish


def _end(_exc: BaseException | None) -> None:
    hook = g.pop("ops_hook", None)
    if hook is not None:
        unbind(hook[2])


def init_app(app: Flask, log_requests: bool) -> None:
    """Install the hooks; first in line, so every other hook and view sees the request id."""
    app.before_request_funcs.setdefault(None, []).insert(0, _begin)
    app.after_request(_finish(log_requests))  # type: ignore[arg-type]
    app.teardown_request(_end)
