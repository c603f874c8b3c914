"""Rate limits per API key (Flask-Limiter, counted in the gateway's Redis), answered 429.

One fixed-window counter per key and window: a single Redis round trip (an INCR script)
per request, no extra headers to compute. The limiter reads no database: a key's bucket is
named by the key's hash (the key itself never reaches Redis); callers without a key are
counted by client address. The authorities' receipts and the port's events, signed rather
than keyed, have a separate (higher) limit per sending address. If Redis goes away,
counting continues in memory and Redis is retried with backoff; a limiter failure never
fails a request.
"""

from __future__ import annotations

import math
import time

from flask import Flask, Response, request
from flask_limiter import ApplicationLimit, Limiter
from flask_limiter.errors import RateLimitExceeded
from limits import parse_many

from gateway.api.auth import hash_key
from gateway.api.problems import problem
from gateway.settings import Settings

EXEMPT_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
SIGNED_BLUEPRINTS = frozenset({"receipts", "port_events"})  # authenticated by signature


def _client() -> str:
    return f"addr:{request.remote_addr or '-'}"


def _caller() -> str:
    """The bucket of this request: its API key (by hash: no database read, and the key
    itself never reaches Redis), else its client address."""
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    token = token.strip()
    if scheme.lower() == "bearer" and token:
        return "key:" + hash_key(token)[:32]
    return _client()


def _signed() -> bool:
    return request.blueprint in SIGNED_BLUEPRINTS


def _too_many(limiter: Limiter, exc: RateLimitExceeded) -> Response:
    """429 problem details with Retry-After: the seconds until the window resets."""
    retry_after = 1
    current = limiter.current_limit
    try:
        if current is not None:
            retry_after = max(1, math.ceil(current.window[0] - time.time()))
    except Exception:  # the window could not be read: a safe small hint
        retry_after = 1
    limit = str(exc.limit.limit)
    who = "address" if _signed() or not request.headers.get("Authorization") else "API key"
    resp = problem(
        429,
        "rate-limited",
        "Too many requests",
        f"Too many requests for this {who} (limit: {limit}); retry after {retry_after} s.",
        limit=limit,
        retry_after=retry_after,
    )
    resp.headers["Retry-After"] = str(retry_after)
    return resp


def check(value: str, name: str) -> str:
    """The limit string, or ValueError naming the setting (fail at start, not per request)."""
    value = value.strip()
    if value:
        try:
            parse_many(value)
        except ValueError as exc:
            raise ValueError(f"GATEWAY_{name.upper()}={value!r}: {exc}") from None
    return value


def init_app(app: Flask, settings: Settings) -> Limiter | None:
    """Install the limits configured in ``settings``; nothing at all when both are empty."""
    per_key = check(settings.rate_limit, "rate_limit")
    signed = check(settings.rate_limit_receipts, "rate_limit_receipts")
    if not per_key and not signed:
        return None
    limiter = Limiter(
        key_func=_caller,
        application_limits=[ApplicationLimit(limit_provider=per_key, exempt_when=_signed)]
        if per_key
        else [],
        storage_uri=settings.redis_url or "memory://",
        storage_options={"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
        strategy="fixed-window",
        key_prefix="gateway-rl",
        headers_enabled=False,
        swallow_errors=True,
        in_memory_fallback_enabled=True,
    )
    limiter.request_filter(lambda: request.path in EXEMPT_PATHS)
    if signed:
        shared = limiter.shared_limit(signed, scope="signed", key_func=_client)
        for name in SIGNED_BLUEPRINTS:
            shared(app.blueprints[name])
    limiter.init_app(app)
    app.register_error_handler(RateLimitExceeded, lambda exc: _too_many(limiter, exc))
    app.extensions["gateway.limiter"] = limiter
    return limiter
