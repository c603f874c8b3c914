"""A circuit breaker per authority: after repeated failures, stop calling for a while.

While open, sends fail at once with a retryable error, so workers do not pile up on timeouts
against an authority that is down; after the reset time one trial call is let through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TypeVar

from gateway.domain.errors import RetryableAuthorityError

T = TypeVar("T")


class CircuitBreaker:
    """Closed -> open after ``failures`` retryable errors in a row -> half-open after
    ``reset_seconds`` (one trial) -> closed on success."""

    def __init__(
        self,
        name: str,
        failures: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name, self.failures, self.reset_seconds = name, failures, reset_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._count = 0
        self._opened_at: float | None = None

    @property
    def is_open(self) -> bool:
        with self._lock:
            return (
                self._opened_at is not None and self._clock() - self._opened_at < self.reset_seconds
            )

    def call(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` unless the circuit is open; count its retryable failures."""
        with self._lock:
            if self._opened_at is not None:
                if self._clock() - self._opened_at < self.reset_seconds:
                    raise RetryableAuthorityError(
                        f"{self.name} circuit open after {self._count} failures; "
                        f"next try in {self.reset_seconds:.0f} s"
                    )
                self._opened_at = None  # half-open: this call is the trial
        try:
            result = fn()
        except RetryableAuthorityError:
            with self._lock:
                self._count += 1
                if self._count >= self.failures:
                    self._opened_at = self._clock()
            raise
        with self._lock:
            self._count = 0
            self._opened_at = None
        return result
