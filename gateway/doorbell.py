"""The doorbell: after a commit, the dispatches it made are rung into a Redis list; the relay
turns what was rung into delivery jobs, as large as the backlog makes worthwhile.

Each commit used to enqueue its own job of two or three dispatches. Under load the queue
filled with small jobs, and a job's cost (a fork and some fifty Redis commands) was paid for
every two or three messages. Rung into one list instead, the relay collects what rang while
the workers were busy and enqueues it in jobs of up to ``delivery_batch``; while the workers
are idle it enqueues at once, so a quiet gateway still delivers within milliseconds.

Nothing depends on the bell for correctness: every dispatch is in the database, due
``doorbell_grace`` seconds after its commit, and the relay's sweep enqueues what no job
took. The list is capped; a ring lost with Redis, a relay killed while holding rings, or a
ring cut off by the cap are all delivered by that sweep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

KEY = "gateway:doorbell"
CAP = 100_000  # ids kept in the list at most (a relay down for long under load)
TAKE = 1_000  # ids read per Redis call


def ring(connection: Any, dispatch_ids: list[str]) -> None:
    """Ring for ``dispatch_ids`` (one round trip); raises what Redis raises."""
    if not dispatch_ids:
        return
    pipe = connection.pipeline(transaction=False)
    pipe.rpush(KEY, *dispatch_ids)
    pipe.ltrim(KEY, -CAP, -1)
    pipe.execute()


class Coalescer:
    """What rang and is not enqueued yet, held by the relay. ``enqueue`` makes jobs of up to
    ``batch`` dispatches; ``waiting`` says how many jobs wait in the queue (not started)."""

    def __init__(
        self,
        connection: Any,
        enqueue: Callable[[list[str]], None],
        waiting: Callable[[], int],
        *,
        batch: int,
        idle_below: int,
        hold_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connection = connection
        self.enqueue = enqueue
        self.waiting = waiting
        self.batch = max(1, batch)
        self.idle_below = max(1, idle_below)
        self.hold_seconds = hold_seconds
        self.clock = clock
        self.held: dict[str, None] = {}  # insertion-ordered, each id once
        self.since: float | None = None  # when the oldest held id rang

    def collect(self, timeout: float) -> int:
        """Wait up to ``timeout`` s for rings, then take all that rang; returns how many ids
        were taken. Held ids do not wait longer than their hold allows."""
        if self.since is not None:
            timeout = min(timeout, max(0.0, self.since + self.hold_seconds - self.clock()))
        taken: list[Any] = []
        if timeout > 0:
            first = self.connection.blpop([KEY], timeout=timeout)
            if first is not None:
                taken.append(first[1])
        while True:
            more = self.connection.lpop(KEY, TAKE)
            if not more:
                break
            taken += more
            if len(more) < TAKE:
                break
        for raw in taken:
            self.held[raw.decode() if isinstance(raw, bytes) else str(raw)] = None
        if taken and self.since is None:
            self.since = self.clock()
        return len(taken)

    def flush(self) -> int:
        """Enqueue what is held: full jobs always; the rest too when the workers are about to
        be idle or the oldest id waited its hold. Returns how many ids were enqueued."""
        if not self.held:
            return 0
        ids = list(self.held)
        overdue = self.since is not None and self.clock() - self.since >= self.hold_seconds
        if overdue or self.waiting() < self.idle_below:
            now, keep = ids, []
        else:
            cut = len(ids) - len(ids) % self.batch
            now, keep = ids[:cut], ids[cut:]
        if now:
            self.enqueue(now)
        self.held = dict.fromkeys(keep)
        if not keep:
            self.since = None
        elif now:
            self.since = self.clock()  # what is left waits a full hold from here
        return len(now)
