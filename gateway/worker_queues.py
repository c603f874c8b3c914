"""One delivery queue per worker process (RELIABILITY.md, rq pitfall 6).

rq moves a job from its queue to the queue's intermediate list, then to the started registry.
A worker killed between those steps leaves the job in the intermediate list, where rq fails it
a minute later, and a job in the registry waits for a heartbeat to expire before it counts as
abandoned. When a queue is shared, no worker can tell its own leftovers from another's live
work, so it must wait. With one queue per worker (a *slot*: ``deliveries.1``, ``deliveries.2``
...), whatever sits in a slot's intermediate list or started registry when its worker starts is
the previous incarnation's, and is put back at the front of the queue at once.

A slot's worker serves its own queue first and then the shared one (``deliveries``), which
only gets jobs while no slot worker is alive (workers started by hand without ``--slot``).
The relay gives each job to the live slot with the fewest jobs waiting. A slot is live while
its worker's key is in Redis (rq's heartbeat; ``WORKER_TTL``); a job waiting in a dead slot's
queue is not counted as waiting, so the relay's sweep gives it to a live one.

The database stays the record: a job that runs twice finds its dispatch claimed or sent.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import time
from collections.abc import Callable
from typing import Any

from rq import Queue
from rq.exceptions import NoSuchJobError
from rq.job import Job, JobStatus
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer
from rq.worker_registration import REDIS_WORKER_KEYS

log = logging.getLogger(__name__)
SEP = "."
WORKER_TTL = 60  # seconds a silent worker's key outlives it (rq adds 60 to this)


SLOT = re.compile(r"[A-Za-z0-9_-]{1,40}")  # rq lists a worker's queues comma-separated


def slot_queue_name(base: str, slot: str) -> str:
    """The queue only the worker of ``slot`` serves; a slot is letters, digits, - and _."""
    if not SLOT.fullmatch(slot):
        raise ValueError(f"slot {slot!r}: use 1 to 40 letters, digits, '-' or '_' (e.g. host1-2)")
    return f"{base}{SEP}{slot}"


def slot_of(base: str, queue_name: str) -> str | None:
    """The slot a queue belongs to, or None for the shared queue (or another queue)."""
    prefix = base + SEP
    return queue_name[len(prefix) :] if queue_name.startswith(prefix) else None


class SlotTakenError(RuntimeError):
    """Another live worker already serves this slot: two workers on one slot would take each
    other's work for leftovers."""


def live_workers(connection: Any) -> list[dict[str, str]]:
    """Every registered rq worker whose key has not expired: its name, hostname, pid and the
    queues it serves (comma-separated, as rq stores them). Two round trips."""
    keys = sorted(
        k.decode() if isinstance(k, bytes) else k for k in connection.smembers(REDIS_WORKER_KEYS)
    )
    if not keys:
        return []
    pipe = connection.pipeline(transaction=False)
    for key in keys:
        pipe.hmget(key, "queues", "hostname", "pid")
    out = []
    for key, (queues, hostname, pid) in zip(keys, pipe.execute(), strict=True):
        if queues is None and hostname is None:
            continue  # expired: rq drops it from the set on its next listing
        out.append(
            {
                "key": key,
                "queues": _text(queues),
                "hostname": _text(hostname),
                "pid": _text(pid),
            }
        )
    return out


def _text(value: bytes | str | None) -> str:
    return value.decode() if isinstance(value, bytes) else (value or "")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


def claim_slot(connection: Any, queue_name: str) -> None:
    """Make sure no other live worker serves ``queue_name``. A registration left by a dead
    worker of this machine (SIGKILL leaves its key until it expires) is removed; a live one,
    here or on another machine, raises SlotTakenError."""
    here = socket.gethostname()
    for w in live_workers(connection):
        if queue_name not in w["queues"].split(","):
            continue
        pid = int(w["pid"]) if w["pid"].isdigit() else -1
        # Left by a dead worker here, or by this process's own rq loop before Redis went away.
        if w["hostname"] == here and pid > 0 and (pid == os.getpid() or not _pid_alive(pid)):
            pipe = connection.pipeline()
            pipe.delete(w["key"])
            pipe.srem(REDIS_WORKER_KEYS, w["key"])
            pipe.srem(f"rq:workers:{queue_name}", w["key"])
            pipe.execute()
            continue
        raise SlotTakenError(
            f"queue {queue_name} is already served by worker {w['key'].rsplit(':', 1)[-1]} "
            f"(pid {w['pid']} on {w['hostname']}): give each worker its own --slot"
        )


def recover_leftovers(queue: Queue) -> int:
    """Put back at the front of ``queue`` the jobs its previous worker took and never finished:
    those in its intermediate list and its started registry. Only the slot's own worker may
    call this, before it starts working (claim_slot made sure it is the only one)."""
    conn = queue.connection
    moved = 0
    intermediate = queue.intermediate_queue_key
    while True:  # each id leaves the list and enters the queue in one atomic step
        job_id = conn.lmove(intermediate, queue.key, "RIGHT", "LEFT")
        if job_id is None:
            break
        moved += 1
    registry = StartedJobRegistry(queue=queue)
    for entry in conn.zrange(registry.key, 0, -1):  # "{job id}:{execution id}" in rq 3
        job_id = registry.parse_job_id(entry)
        conn.zrem(registry.key, entry)
        try:
            job = Job.fetch(job_id, connection=conn, serializer=queue.serializer)
        except NoSuchJobError:
            continue  # its hash expired: the relay's sweep enqueues the dispatch again
        if job.get_status(refresh=False) not in (JobStatus.STARTED, JobStatus.QUEUED):
            continue  # it finished (or failed) before its worker died
        # QUEUED: the worker died between registering the job and marking it started; rq's
        # own cleanup skips such an entry and leaves a job that says "queued" in no queue.
        queue.enqueue_job(job, at_front=True)
        moved += 1
    if moved:
        log.warning("queue %s: %d job(s) left by the previous worker put back", queue.name, moved)
    return moved


SCAN_WHOLE_QUEUE_FROM = 8  # jobs asked about in one queue: read the whole list instead


class WorkerQueues:
    """The relay's view of the delivery queues: the live slots (refreshed every ``ttl`` s),
    or the shared queue while no slot worker is alive (a worker started without a slot, or
    none started yet)."""

    def __init__(
        self,
        connection: Any,
        base: str,
        default_timeout: int,
        *,
        ttl: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.connection = connection
        self.base = base
        self.default_timeout = default_timeout
        self.ttl = ttl
        self.clock = clock
        self._queues: dict[str, Queue] = {}
        self._served: set[str] = set()
        self._slots: list[str] = []
        self._checked = float("-inf")

    @classmethod
    def pinned(cls, queue: Queue) -> WorkerQueues:
        """Always ``queue``, never asking Redis who serves what (tests, one-queue tools)."""
        out = cls(queue.connection, queue.name, queue._default_timeout or 180, ttl=float("inf"))
        out._queues[queue.name] = queue
        out._served, out._checked = {queue.name}, 0.0
        return out

    def queue(self, name: str) -> Queue:
        if name not in self._queues:
            self._queues[name] = Queue(
                name,
                connection=self.connection,
                serializer=JSONSerializer,
                default_timeout=self.default_timeout,
            )
        return self._queues[name]

    def _refresh(self) -> None:
        if self.clock() - self._checked >= self.ttl:
            self._served = {
                name for w in live_workers(self.connection) for name in w["queues"].split(",")
            }
            self._slots = sorted(n for n in self._served if slot_of(self.base, n))
            self._checked = self.clock()

    def live(self) -> list[str]:
        """The queues new jobs may go to: the live slots, or the shared queue if none is."""
        self._refresh()
        return self._slots or [self.base]

    def is_live(self, name: str) -> bool:
        """Whether a job waiting in ``name`` will be taken: a live worker serves it. The
        shared queue counts as live while no worker at all is (nothing better to move to)."""
        self._refresh()
        return name in self._served or (name == self.base and not self._served)

    def counts(self) -> dict[str, int]:
        """Jobs waiting (not started) in each live queue; one round trip."""
        names = self.live()
        pipe = self.connection.pipeline(transaction=False)
        for name in names:
            pipe.llen(self.queue(name).key)
        return dict(zip(names, pipe.execute(), strict=True))

    def waiting(self) -> int:
        return sum(self.counts().values())

    def waiting_ids(self, job_ids: list[str]) -> set[str]:
        """The jobs of ``job_ids`` waiting right now to be taken: their hash says "queued",
        a live worker serves their queue, and their id is in that queue's list (after a
        crash at the wrong moment a "queued" job may be in none). Two round trips."""
        pipe = self.connection.pipeline(transaction=False)
        for job_id in job_ids:
            pipe.hmget(Job.key_for(job_id), "status", "origin")
        candidates = [
            (job_id, origin.decode())
            for job_id, (status, origin) in zip(job_ids, pipe.execute(), strict=True)
            if job_id and status == b"queued" and origin and self.is_live(origin.decode())
        ]
        by_queue: dict[str, list[str]] = {}
        for job_id, name in candidates:
            by_queue.setdefault(name, []).append(job_id)
        # LPOS scans the queue's list once per job; under a backlog (thousands of jobs, a
        # sweep asking for hundreds) those scans were most of Redis's CPU. So a queue asked
        # for many jobs is read once (LRANGE) and looked up here.
        asked = list(by_queue.items())
        for name, ids in asked:
            key = self.queue(name).key
            if len(ids) < SCAN_WHOLE_QUEUE_FROM:
                for job_id in ids:
                    pipe.lpos(key, job_id)
            else:
                pipe.lrange(key, 0, -1)
        answers = iter(pipe.execute() if asked else [])
        waiting: set[str] = set()
        for _name, ids in asked:
            if len(ids) < SCAN_WHOLE_QUEUE_FROM:
                waiting.update(j for j in ids if next(answers) is not None)
            else:
                listed = {raw.decode() for raw in next(answers)}
                waiting.update(j for j in ids if j in listed)
        return waiting

    def pick(self) -> Queue:
        """The live queue with the fewest jobs waiting (the shared one if none is live)."""
        return self.spread(1)[0]

    def spread(self, jobs: int) -> list[Queue]:
        """A queue for each of ``jobs`` new jobs, each to the one with the fewest waiting
        counting those placed before it: one round trip for the lot."""
        counts = self.counts()
        out = []
        for _ in range(jobs):
            name = min(counts, key=lambda n: (counts[n], n))
            counts[name] += 1
            out.append(self.queue(name))
        return out


def as_queues(target: Queue | WorkerQueues) -> WorkerQueues:
    return target if isinstance(target, WorkerQueues) else WorkerQueues.pinned(target)
