"""Rate limits per API key (Flask-Limiter, counted in the gateway's Redis), answered 429.

One fixed-window counter per key and window: a single Redis round trip (an INCR script)
per request, no extra headers to compute. The limiter reads no database: a key's bucket is
named by the key's hash (the key itself never reaches Redis); callers without a key are
counted by client address. The authorities' receipts and the port's events, signed rather
than keyed, have a separate (higher) limit per sending address. If Redis goes away,
counting continues in memory and Redis is retried with backoff; a limiter failure never
fails a request. A caller the limiter has refused is refused again, until its window ends,
before the limiter runs (gateway/api/refusals.py): a flood costs little more than its
allowance, so it does not slow the other tenants down.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from flask import Flask, Response, request
from flask_limiter import ApplicationLimit, Limiter
from flask_limiter.errors import RateLimitExceeded
from limits import parse_many

from gateway.api import instrument
from gateway.api.auth import hash_key
from gateway.api.problems import problem
from gateway.api.refusals import Refusals
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


def _bucket() -> str:
    """Whose budget this request draws on: a signed endpoint's sending address, or the
    application limit's caller (the same identities the limiter counts under)."""
    return ("signed|" + _client()) if _signed() else ("app|" + _caller())


def _answer_429(limit: str, retry_after: int) -> Response:
    """429 problem details with Retry-After: the seconds until the window resets."""
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


def _too_many(limiter: Limiter, refusals: Refusals, exc: RateLimitExceeded) -> Response:
    """The limiter refused this request: answer it, and remember the caller is over its
    limit until the window ends (read once per window and process)."""
    limit = str(exc.limit.limit)
    bucket = _bucket()
    ends = refusals.window_end(bucket, time.time())
    current = limiter.current_limit
    try:
        if ends is None and current is not None:
            ends = float(current.window[0])
            refusals.remember(bucket, limit, ends, time.time())
    except Exception:  # the window could not be read: a safe small hint, nothing kept
        ends = None
    return _answer_429(limit, _seconds_until(ends))


def _seconds_until(ends: float | None) -> int:
    """Retry-After: whole seconds to the window's end, at least 1 (read after the end was,
    so a window of N seconds never says more than N)."""
    return max(1, math.ceil(ends - time.time())) if ends is not None else 1


def _refuse_known(refusals: Refusals) -> Callable[[], Response | None]:
    """A caller already refused in this window is refused again before the limiter runs."""

    def refuse() -> Response | None:
        if request.path in EXEMPT_PATHS:
            return None
        known = refusals.current(_bucket(), time.time())
        return None if known is None else _answer_429(known.limit, _seconds_until(known.ends))

    return refuse


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
    refusals = Refusals()
    hooks = app.before_request_funcs.setdefault(None, [])
    ours = sum(1 for hook in hooks if getattr(hook, "__module__", "") == instrument.__name__)
    hooks.insert(ours, _refuse_known(refusals))  # after the request id and timer, then first
    app.register_error_handler(RateLimitExceeded, lambda exc: _too_many(limiter, refusals, exc))
    app.extensions["gateway.limiter"] = limiter
    return limiter
