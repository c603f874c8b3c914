"""One timer thread for the sandbox's deferred work (match deadlines, later decisions), so
waiting never holds a request thread or a worker."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass(order=True)
class _Timer:
    at: float
    seq: int
    fn: Callable[[], None] = field(compare=False)


class Scheduler:
    """Run short callables after a delay, in due order, on one daemon thread."""

    def __init__(self, name: str = "sandbox-scheduler") -> None:
        self._heap: list[_Timer] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def call_later(self, delay: float, fn: Callable[[], None]) -> None:
        with self._cv:
            heapq.heappush(self._heap, _Timer(time.monotonic() + delay, next(self._seq), fn))
            self._cv.notify()

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify()
        self._thread.join(5)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._stopped and (not self._heap or self._heap[0].at > time.monotonic()):
                    self._cv.wait((self._heap[0].at - time.monotonic()) if self._heap else None)
                if self._stopped:
                    return
                timer = heapq.heappop(self._heap)
            try:
                timer.fn()
            except Exception:  # a failed callback must not stop the others
                log.exception("sandbox scheduled task failed")
