"""Fault modes per authority, switchable at run time, so tests can make the sandbox misbehave
the way real authorities do: slow, failing, timing out, losing or repeating receipts, or in
a planned outage."""

from __future__ import annotations

import math
import random
import threading
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

AUTHORITIES = ("customs", "inspection", "port")
RATES = ("error_rate", "timeout_rate", "ack_lost_rate", "drop_receipts", "duplicate_receipts")
SECONDS = ("delay", "receipt_delay", "timeout_seconds")
DEFAULT_TIMEOUT_SECONDS = 12.0  # longer than the gateway's 5 s read timeout


class BadAdminInput(ValueError):
    """An admin request the sandbox refuses (answered 400 with this text)."""


@dataclass(frozen=True)
class FaultConfig:
    """One authority's fault modes; all zero means a well-behaved authority."""

    delay: float = 0.0  # seconds before answering a submission
    receipt_delay: float = 0.0  # seconds added to every receipt
    error_rate: float = 0.0  # share answered 500 (message not taken)
    timeout_rate: float = 0.0  # share answered only after timeout_seconds (not taken)
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    ack_lost_rate: float = 0.0  # share taken, then answered 500
    drop_receipts: float = 0.0  # share of receipts never pushed (still pollable)
    duplicate_receipts: float = 0.0  # share of receipts pushed twice
    out_of_order: bool = False  # a document's receipts pushed in reverse order
    outage_start: datetime | None = None
    outage_end: datetime | None = None

    def in_outage(self, now: datetime) -> bool:
        return (
            self.outage_start is not None
            and self.outage_end is not None
            and self.outage_start <= now < self.outage_end
        )

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        start, end = out.pop("outage_start"), out.pop("outage_end")
        out["outage"] = (
            {"start": start.isoformat(), "end": end.isoformat()} if start and end else None
        )
        out["in_outage"] = self.in_outage(datetime.now(UTC))
        return out


@dataclass(frozen=True)
class Intake:
    """What to do with one submission before reading it."""

    action: str  # "ok", "outage", "error", "timeout"
    sleep: float = 0.0  # seconds to wait before answering
    ack_lost: bool = False  # take it, then answer 500
    retry_after: int = 0
    outage_end: datetime | None = None


def _number(body: dict[str, Any], name: str, low: float, high: float) -> float:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise BadAdminInput(f"{name} must be a number")
    if not low <= value <= high:
        raise BadAdminInput(f"{name} must be between {low} and {high}")
    return float(value)


def _time(value: Any, name: str) -> datetime:
    if not isinstance(value, str):
        raise BadAdminInput(f"outage.{name} must be an ISO 8601 date-time")
    try:
        at = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise BadAdminInput(f"outage.{name} is not an ISO 8601 date-time: {value!r}") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


def merge(config: FaultConfig, body: dict[str, Any], now: datetime) -> FaultConfig:
    """``config`` with the fields of an admin request applied (partial update)."""
    known = {"authority", "outage", "outage_seconds", "out_of_order", *RATES, *SECONDS}
    unknown = sorted(set(body) - known)
    if unknown:
        raise BadAdminInput(f"unknown fault fields: {', '.join(unknown)}")
    changes: dict[str, Any] = {}
    for name in RATES:
        if name in body:
            changes[name] = _number(body, name, 0.0, 1.0)
    for name in SECONDS:
        if name in body:
            changes[name] = _number(body, name, 0.0, 3600.0)
    if "out_of_order" in body:
        if not isinstance(body["out_of_order"], bool):
            raise BadAdminInput("out_of_order must be true or false")
        changes["out_of_order"] = body["out_of_order"]
    if "outage_seconds" in body:
        seconds = _number(body, "outage_seconds", 0.0, 7 * 86400.0)
        changes["outage_start"] = now if seconds else None
        changes["outage_end"] = now + timedelta(seconds=seconds) if seconds else None
    if "outage" in body:
        window = body["outage"]
        if window is None:
            changes["outage_start"] = changes["outage_end"] = None
        elif isinstance(window, dict) and set(window) == {"start", "end"}:
            start, end = _time(window["start"], "start"), _time(window["end"], "end")
            if end <= start:
                raise BadAdminInput("outage.end must be after outage.start")
            changes["outage_start"], changes["outage_end"] = start, end
        else:
            raise BadAdminInput('outage must be {"start": iso, "end": iso} or null')
    return replace(config, **changes)


class Faults:
    """The fault modes of every authority, with one random source; thread-safe."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self._lock = threading.Lock()
        self._rng = rng or random.Random()  # simulation, not security
        self._configs = {a: FaultConfig() for a in AUTHORITIES}

    def get(self, authority: str) -> FaultConfig:
        with self._lock:
            return self._configs[authority]

    def update(self, body: Any) -> FaultConfig:
        """Apply an admin request ``{"authority": ..., ...}``; raises BadAdminInput."""
        if not isinstance(body, dict):
            raise BadAdminInput("expected a JSON object")
        authority = body.get("authority")
        if authority not in AUTHORITIES:
            raise BadAdminInput(f"authority must be one of {', '.join(AUTHORITIES)}")
        with self._lock:
            config = merge(self._configs[authority], body, datetime.now(UTC))
            self._configs[authority] = config
            return config

    def reset(self) -> None:
        with self._lock:
            self._configs = {a: FaultConfig() for a in AUTHORITIES}

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {a: c.as_json() for a, c in self._configs.items()}

    def chance(self, rate: float) -> bool:
        """True with probability ``rate`` (never at 0, always at 1)."""
        if rate <= 0.0:
            return False
        if rate >= 1.0:
            return True
        with self._lock:
            return self._rng.random() < rate

    def intake(self, authority: str) -> Intake:
        """Decide how this submission is treated."""
        config = self.get(authority)
        now = datetime.now(UTC)
        if config.in_outage(now):
            assert config.outage_end is not None
            wait = max(1, math.ceil((config.outage_end - now).total_seconds()))
            return Intake("outage", retry_after=wait, outage_end=config.outage_end)
        if self.chance(config.error_rate):
            return Intake("error", sleep=config.delay)
        if self.chance(config.timeout_rate):
            return Intake("timeout", sleep=config.delay + config.timeout_seconds)
        return Intake("ok", sleep=config.delay, ack_lost=self.chance(config.ack_lost_rate))
