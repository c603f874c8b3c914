"""Callers known to be over a rate limit, and until when: so a flood is refused for less
than it costs to serve.

The limiter's first refusal in a window reads when the window ends (a TTL in the store);
from then on, until that end, the same caller's requests are answered 429 before the
limiter runs: no round trip to the store, no evaluation of every limit. A fixed window
once over its limit stays over until it ends, so nothing the store would have allowed is
refused, provided the end is not overstated. The store gives it in whole seconds (rounded),
so an entry is trusted until half a second before it; what comes after goes through the
limiter, which refuses it the usual way. Each process learns on its own; the store stays
the only counter.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

ROUNDING = 0.5  # the store's window end, in whole seconds, may be this much late


@dataclass(frozen=True)
class Refusal:
    """A caller over ``limit`` until ``until``; its window ends at ``ends`` (Retry-After)."""

    limit: str
    ends: float
    until: float


class Refusals:
    """Per process: the callers over a limit, by bucket (its scope and identity)."""

    def __init__(self, size: int = 4096) -> None:
        self._by_bucket: dict[str, Refusal] = {}
        self._size = size
        self._lock = threading.Lock()

    def current(self, bucket: str, now: float) -> Refusal | None:
        """The bucket's refusal while it is sure to hold; None otherwise."""
        found = self._by_bucket.get(bucket)
        return found if found is not None and found.until > now else None

    def window_end(self, bucket: str, now: float) -> float | None:
        """The end of the bucket's window as last read, while it lies ahead."""
        found = self._by_bucket.get(bucket)
        return found.ends if found is not None and found.ends > now else None

    def remember(self, bucket: str, limit: str, ends: float, now: float) -> None:
        """The limiter refused ``bucket`` under ``limit``, whose window ends at ``ends``."""
        refusal = Refusal(limit, ends, ends - ROUNDING)
        with self._lock:
            if len(self._by_bucket) >= self._size:  # keep only windows still open
                self._by_bucket = {k: v for k, v in self._by_bucket.items() if v.ends > now}
                if len(self._by_bucket) >= self._size:
                    self._by_bucket.clear()
            self._by_bucket[bucket] = refusal
