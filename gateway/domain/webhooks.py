"""Webhooks, pure: which events a subscription wants, the signature, the URL rules, retries.

The signature follows Stripe and Standard Webhooks in spirit: the header
``Webhook-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`` keyed with the
webhook's secret, so a receiver checks authenticity and freshness with a few lines of code.
"""

from __future__ import annotations

import hashlib
import hmac
import random
from dataclasses import dataclass
from urllib.parse import urlsplit

from gateway.domain.errors import InputError, Violation
from gateway.domain.statuses import DeclarationStatus

STATUS_CHANGED = "declaration.status_changed"
PING = "webhook.ping"
# "declaration.status_changed" is every change; "declaration.<status>" a change into it.
EVENT_TYPES = (STATUS_CHANGED, *(f"declaration.{s.value}" for s in DeclarationStatus))
MAX_URL_LENGTH = 2000
MAX_EVENTS = len(EVENT_TYPES)


class WebhookInvalid(InputError):
    """A webhook registration that cannot be accepted; each problem names its field."""

    status = 422
    type_slug = "webhook-invalid"
    title = "The webhook cannot be registered"


class SignatureMismatch(InputError):
    """A signature header that does not verify (receivers and tests use ``verify``)."""

    status = 401
    type_slug = "signature-mismatch"
    title = "Webhook signature does not verify"


def wants(subscribed: list[str], status: str) -> bool:
    """Whether a webhook subscribed to ``subscribed`` gets a change into ``status``."""
    return STATUS_CHANGED in subscribed or f"declaration.{status}" in subscribed


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """The ``Webhook-Signature`` header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, *, now: int, tolerance: int = 300) -> int:
    """Check a signature header the way a receiver should; returns its timestamp or raises."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    try:
        timestamp = int(parts.get("t", ""))
    except ValueError:
        raise SignatureMismatch("The signature header has no timestamp.") from None
    if abs(now - timestamp) > tolerance:
        raise SignatureMismatch(f"The signature is {abs(now - timestamp)} s old or early.")
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    given = [v for k, v in (p.split("=", 1) for p in header.split(",") if "=" in p) if k == "v1"]
    if not any(hmac.compare_digest(expected, g) for g in given):
        raise SignatureMismatch("No v1 signature matches the body.")
    return timestamp


def url_violations(url: object) -> list[Violation]:
    """Why ``url`` cannot receive webhooks: http(s), a host, no credentials, not too long."""
    if not isinstance(url, str) or not url.strip():
        return [Violation("/url", "webhook.url.required", "an http or https URL is required")]
    if len(url) > MAX_URL_LENGTH:
        return [Violation("/url", "webhook.url.too_long", f"at most {MAX_URL_LENGTH} characters")]
    try:
        parts = urlsplit(url)
        port = parts.port  # raises on a port that is not a number in range
    except ValueError as exc:
        return [Violation("/url", "webhook.url.invalid", f"not a valid URL: {exc}")]
    if parts.scheme not in ("http", "https"):
        return [
            Violation("/url", "webhook.url.scheme", f"must be http or https, not {parts.scheme!r}")
        ]
    out: list[Violation] = []
    if not parts.hostname:
        out.append(Violation("/url", "webhook.url.host", "the URL names no host"))
    if parts.username or parts.password:
        out.append(
            Violation("/url", "webhook.url.credentials", "credentials in the URL are refused")
        )
    if parts.fragment:
        out.append(Violation("/url", "webhook.url.fragment", "a URL fragment is never sent"))
    if any(c.isspace() or not c.isprintable() for c in url) or port == 0:
        out.append(Violation("/url", "webhook.url.invalid", "not a valid URL"))
    return out


def event_violations(events: object) -> list[Violation]:
    """Why ``events`` is not a list of known event types (field paths per item)."""
    known = ", ".join(EVENT_TYPES)
    if not isinstance(events, list) or not events:
        return [Violation("/events", "webhook.events.required", f"a non-empty list of: {known}")]
    if len(events) > MAX_EVENTS:
        return [Violation("/events", "webhook.events.too_many", f"at most {MAX_EVENTS}")]
    return [
        Violation(f"/events/{i}", "webhook.events.unknown", f"one of: {known}", value=str(e)[:80])
        for i, e in enumerate(events)
        if not isinstance(e, str) or e not in EVENT_TYPES
    ]


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with jitter until a 2xx, given up after ``max_age`` seconds."""

    base: float
    cap: float
    max_age: float

    def delay(self, attempt: int) -> float:
        """Seconds before the next try after failed attempt ``attempt`` (1-based)."""
        ceiling = min(self.cap, self.base * (2 ** max(0, attempt - 1)))
        return random.uniform(ceiling / 2, ceiling)

    def next_try(self, attempt: int, age: float) -> float | None:
        """The delay to the next try, or None when that would pass the delivery's max age."""
        delay = self.delay(attempt)
        return None if age + delay > self.max_age else delay
