"""Liveness and readiness probes.

``/healthz`` says the process serves requests (nothing else: a probe that restarts the
gateway must not fire because the database blinked). ``/readyz`` checks what a submission
needs end to end: the database, Redis, and each authority's endpoint (a TCP connect) or its
announced planned outage; it answers 503 naming the parts that failed. Checks run in
parallel with short timeouts and the answer is reused for ``health_cache_seconds``.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import text

from gateway.persistence import repository as repo
from gateway.persistence.outages import open_notices

bp = Blueprint("health", __name__)
AUTHORITIES = ("customs", "inspection", "port")


@bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    """200 while the process answers requests."""
    return jsonify({"status": "ok"}), 200


def _reachable(url: str, timeout: float) -> dict[str, Any]:
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=timeout):
            return {"status": "ok"}
    except OSError as exc:
        return {"status": "unreachable", "error": type(exc).__name__}


class Readiness:
    """The checks, and the last answer with the moment it was made."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.settings = app.config["GATEWAY_SETTINGS"]
        self._lock = threading.Lock()
        self._answer: tuple[float, dict[str, Any]] | None = None

    def answer(self) -> dict[str, Any]:
        ttl = self.settings.health_cache_seconds
        with self._lock:
            if self._answer is None or time.monotonic() - self._answer[0] >= ttl:
                self._answer = (time.monotonic(), self._check())
            return self._answer[1]

    def _database(self) -> dict[str, Any]:
        with self.app.extensions["gateway.runtime"]().engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            at = repo.now()
            outages = {n.authority: n for n in open_notices(conn, at) if n.covers(at)}
        return {"status": "ok", "outages": outages}

    def _redis(self) -> dict[str, Any]:
        self.app.extensions["gateway.redis"]().ping()
        return {"status": "ok"}

    def _check(self) -> dict[str, Any]:
        timeout = self.settings.health_timeout
        jobs: dict[str, Callable[[], dict[str, Any]]] = {
            "database": self._database,
            "redis": self._redis,
            **{a: partial(_reachable, self.settings.endpoint(a), timeout) for a in AUTHORITIES},
        }
        pool = ThreadPoolExecutor(max_workers=len(jobs), thread_name_prefix="readyz")
        futures = {name: pool.submit(fn) for name, fn in jobs.items()}
        deadline = time.monotonic() + timeout * 2 + 0.5
        results: dict[str, dict[str, Any]] = {}
        for name, future in futures.items():
            try:
                results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
            except Exception as exc:  # a check that failed or hung: the part is down
                results[name] = {"status": "down", "error": type(exc).__name__}
        pool.shutdown(wait=False, cancel_futures=True)
        outages = results["database"].pop("outages", {})
        for authority, notice in outages.items():
            # A planned outage is expected: submissions are held, so the gateway is ready.
            results[authority] = {
                "status": "planned_outage",
                "until": notice.ends_at.isoformat(timespec="seconds").replace("+00:00", "Z"),
                "notice": notice.id,
            }
        failed = [n for n, r in results.items() if r["status"] not in ("ok", "planned_outage")]
        return {
            "status": "ok" if not failed else "unavailable",
            "failed": failed,
            **{name: r["status"] for name, r in results.items()},  # one word per part
            "checks": results,
        }


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    """200 when the database, Redis and every authority (or its planned outage) check out;
    503 with the parts that failed otherwise."""
    readiness = current_app.extensions.get("gateway.readiness")
    if readiness is None:
        readiness = current_app.extensions["gateway.readiness"] = Readiness(
            current_app._get_current_object()  # type: ignore[attr-defined]
        )
    body = readiness.answer()
    return jsonify(body), 200 if not body["failed"] else 503
