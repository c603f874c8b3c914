"""A tenant's requests at a given rate during given windows of wall-clock time, each timed.
Open loop: request n of a window leaves at a random moment of its slot [n, n+1) / rate,
whatever the answers. One request per slot keeps the rate exact (a burst never pushes a
client that keeps under its limit over it), and two loads never line up (with fixed periods
from one start, a request of one would meet a request of the other every few periods).

The fairness test runs the well-behaved tenants in its own process and the flooder in one of
its own (this module's command line), so neither's client-side work (its GIL, its parsing)
is counted in the other's latency; both read the same clock, so the test can tell which of
the others' requests were sent while the flood was on.

    python -m tests.paced_load URL KEY RATE CONNECTIONS START:END [START:END ...]
    # (times are time.time() seconds) prints the Tally as JSON when the last window ends
"""

from __future__ import annotations

import http.client
import json
import random
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from urllib.parse import urlsplit

Window = tuple[float, float]  # [start, end) in time.time() seconds


@dataclass
class Tally:
    """What one paced run saw, per request in sending order: when it left (time.time()),
    its latency (seconds) and status; and the Retry-After of every 429 (-1: missing)."""

    sent_at: list[float] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    statuses: list[int] = field(default_factory=list)
    retry_after: list[int] = field(default_factory=list)
    late: int = 0  # requests that left more than one period behind their schedule

    def count(self, status: int) -> int:
        return self.statuses.count(status)

    def within(self, windows: Sequence[Window], margin: float = 0.0) -> list[float]:
        """The latencies of the requests sent inside ``windows`` (shrunk by ``margin`` at
        both ends, so a request near a switch of the other load counts for neither side)."""
        return [
            latency
            for at, latency in zip(self.sent_at, self.latencies, strict=True)
            if any(start + margin <= at < end - margin for start, end in windows)
        ]


def p95(values: Sequence[float]) -> float:
    """The 95th percentile, nearest rank."""
    ordered = sorted(values)
    return ordered[max(0, int(len(ordered) * 0.95 + 0.5) - 1)]


def _connection(url: str) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=10)


def _sleep_until(at: float) -> float:
    """Sleep until ``at`` (time.time()); how late we are already (seconds, >= 0)."""
    wait = at - time.time()
    if wait > 0:
        time.sleep(wait)
        return 0.0
    return -wait


def paced(
    url: str,
    keys: Sequence[str],
    rate: float,
    windows: Sequence[Window],
    connections: int = 1,
) -> Tally:
    """GET ``url`` ``rate`` times a second during each window, round robin over ``keys``
    (several tenants: each key has a share of the rate) and ``connections`` kept-alive
    connections (several land on several server workers)."""
    tally = Tally()
    for start, end in windows:
        # Fresh connections each window: the server closes one idle past its keep-alive.
        pool = [_connection(url) for _ in range(max(1, connections))]
        try:
            _window(pool, urlsplit(url).path, keys, rate, start, end, tally)
        finally:
            for conn in pool:
                conn.close()
    return tally


def _window(
    pool: list[http.client.HTTPConnection],
    path: str,
    keys: Sequence[str],
    rate: float,
    start: float,
    end: float,
    tally: Tally,
) -> None:
    headers = [{"Authorization": f"Bearer {key}"} for key in keys]
    period = 1.0 / rate
    place = random.Random()  # when in its slot each request leaves
    n = 0
    while (due := start + (n + place.random()) * period) < end:
        if _sleep_until(due) > period:
            tally.late += 1
        conn = pool[n % len(pool)]
        tally.sent_at.append(time.time())
        began = time.perf_counter()
        conn.request("GET", path, headers=headers[n % len(headers)])
        resp = conn.getresponse()
        resp.read()
        tally.latencies.append(time.perf_counter() - began)
        tally.statuses.append(resp.status)
        if resp.status == 429:
            tally.retry_after.append(int(resp.getheader("Retry-After") or -1))
        n += 1


def tally_from_json(text: str) -> Tally:
    return Tally(**json.loads(text))


def main(argv: list[str]) -> int:
    url, key, rate, connections, *spans = argv
    windows = [(float(a), float(b)) for a, b in (span.split(":") for span in spans)]
    tally = paced(url, [key], float(rate), windows, int(connections))
    print(json.dumps(asdict(tally)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
