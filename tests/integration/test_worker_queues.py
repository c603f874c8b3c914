"""One queue per worker (RELIABILITY.md, rq pitfall 6), with real `gateway worker` processes:
a worker restarted on its slot runs at once what its SIGKILLed predecessor had dequeued; two
live workers cannot share a slot; the relay spreads jobs over the live slots and does not
count a job waiting in a dead worker's queue as waiting."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis
from rq import Queue, Worker
from rq.registry import StartedJobRegistry
from rq.serializers import JSONSerializer

from gateway.bootstrap import delivery_job_id, enqueue_deliveries, worker_queues
from gateway.jobs.relay import _still_queued
from gateway.settings import Settings
from gateway.worker_queues import (
    SCAN_WHOLE_QUEUE_FROM,
    SlotTakenError,
    claim_slot,
    slot_queue_name,
)
from tests.e2e.stack import PROJECT_ROOT

SLOT_QUEUE = slot_queue_name("deliveries", "7")


def _env(settings: Settings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    return {**env, "GATEWAY_DATA_DIR": str(settings.data_dir), "GATEWAY_REDIS_URL":
            settings.redis_url}  # fmt: skip


@pytest.fixture
def start_worker(
    settings: Settings, tmp_path: Path
) -> Iterator[Callable[..., subprocess.Popen[bytes]]]:
    """Starts `gateway worker --slot`; each one's output goes to worker-<n>.log."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(slot: str = "7") -> subprocess.Popen[bytes]:
        with (tmp_path / f"worker-{len(procs) + 1}.log").open("wb") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "gateway", "worker", "--slot", slot],
                cwd=PROJECT_ROOT,
                env=_env(settings),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the work horse is in its group: killpg kills both
            )
        procs.append(proc)
        return proc

    yield start
    for proc in procs:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def _wait(check: Callable[[], bool], what: str, timeout: float = 30) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout} s")


def _runs(marker: Path) -> int:
    return len(marker.read_text().splitlines()) if marker.exists() else 0


def _job(queue: Queue, marker: Path, job_id: str) -> None:
    """A job that notes each time it starts, then takes long (a delivery mid-call)."""
    queue.enqueue("os.system", f"echo run >> {marker}; sleep 60", job_id=job_id, job_timeout=300)


def test_a_killed_workers_started_job_is_run_again_as_soon_as_its_slot_restarts(
    settings: Settings, start_worker: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
):
    conn = redis.Redis.from_url(settings.redis_url)
    queue = Queue(SLOT_QUEUE, connection=conn, serializer=JSONSerializer)
    marker = tmp_path / "runs"
    first = start_worker()
    _job(queue, marker, "job-started")
    _wait(lambda: _runs(marker) == 1, "the first worker started the job")
    os.killpg(first.pid, signal.SIGKILL)  # parent and work horse, mid-job
    first.wait(10)
    assert "job-started" in StartedJobRegistry(queue=queue).get_job_ids(cleanup=False)
    # rq alone would leave it there until its registry entry expires (the job's timeout);
    # the slot's next worker knows it is its own and runs it again at once.
    start_worker()
    _wait(lambda: _runs(marker) == 2, "the restarted worker ran the job again", timeout=20)


def test_a_job_dequeued_but_never_registered_is_run_by_the_slots_next_worker(
    settings: Settings, start_worker: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
):
    conn = redis.Redis.from_url(settings.redis_url)
    queue = Queue(SLOT_QUEUE, connection=conn, serializer=JSONSerializer)
    marker = tmp_path / "runs"
    _job(queue, marker, "job-orphan")
    # What a worker killed between rq's dequeue and its registration leaves behind.
    assert conn.lmove(queue.key, queue.intermediate_queue_key, "RIGHT", "LEFT") == b"job-orphan"
    assert queue.count == 0
    start_worker()
    _wait(lambda: _runs(marker) == 1, "the orphan ran", timeout=20)
    assert conn.llen(queue.intermediate_queue_key) == 0


def test_a_job_registered_but_never_marked_started_is_run_by_the_slots_next_worker(
    settings: Settings, start_worker: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
):
    """Found by the chaos run: a worker killed between putting the job in its started
    registry and marking it started leaves a job that says "queued" in no queue; rq's own
    cleanup drops the entry and the job with it."""
    conn = redis.Redis.from_url(settings.redis_url)
    queue = Queue(SLOT_QUEUE, connection=conn, serializer=JSONSerializer)
    marker = tmp_path / "runs"
    _job(queue, marker, "job-half-started")
    assert conn.lmove(queue.key, queue.intermediate_queue_key, "RIGHT", "LEFT")
    conn.lrem(queue.intermediate_queue_key, 1, "job-half-started")
    registry = StartedJobRegistry(queue=queue)
    conn.zadd(registry.key, {"job-half-started:execution-1": time.time() + 600})
    assert queue.fetch_job("job-half-started").get_status() == "queued"
    start_worker()
    _wait(lambda: _runs(marker) == 1, "the half-started job ran", timeout=20)


def test_a_second_live_worker_on_the_same_slot_refuses_to_start(
    settings: Settings, start_worker: Callable[..., subprocess.Popen[bytes]], tmp_path: Path
):
    conn = redis.Redis.from_url(settings.redis_url)
    start_worker()
    _wait(lambda: _serving(conn, SLOT_QUEUE), "the first worker registered")
    second = start_worker()
    second.wait(60)
    out = (tmp_path / "worker-2.log").read_bytes()
    assert second.returncode == 1, out
    assert b"queue deliveries.7 is already served by worker" in out
    assert b"own --slot" in out
    other = start_worker(slot="8")  # another slot starts beside it
    _wait(lambda: _serving(conn, slot_queue_name("deliveries", "8")), "slot 8 registered")
    assert other.poll() is None


def _serving(conn: redis.Redis, queue_name: str) -> bool:
    return any(queue_name in w.queue_names() for w in Worker.all(connection=conn))


def _register(conn: redis.Redis, queue_name: str, *, pid: int, hostname: str) -> Worker:
    """A worker's registration as rq writes it, for a process we choose."""
    w = Worker([Queue(queue_name, connection=conn)], connection=conn)
    w.register_birth()
    conn.hset(w.key, mapping={"pid": pid, "hostname": hostname})
    return w


def test_claim_slot_clears_a_dead_local_registration_and_refuses_a_live_or_remote_one(
    settings: Settings,
):
    import socket

    conn = redis.Redis.from_url(settings.redis_url)
    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = _register(conn, SLOT_QUEUE, pid=dead.pid, hostname=socket.gethostname())
    claim_slot(conn, SLOT_QUEUE)  # the SIGKILLed predecessor's key: removed
    assert not conn.exists(stale.key)
    alive = subprocess.Popen(["sleep", "30"])
    try:
        _register(conn, SLOT_QUEUE, pid=alive.pid, hostname=socket.gethostname())
        with pytest.raises(SlotTakenError, match=f"pid {alive.pid}"):
            claim_slot(conn, SLOT_QUEUE)
    finally:
        alive.kill()
        alive.wait()
    conn.flushdb()
    _register(conn, SLOT_QUEUE, pid=1, hostname="another-machine")
    with pytest.raises(SlotTakenError, match="another-machine"):
        claim_slot(conn, SLOT_QUEUE)


def test_the_relay_spreads_jobs_over_live_slots_and_reenqueues_from_a_dead_one(
    settings: Settings,
):
    conn = redis.Redis.from_url(settings.redis_url)
    queues = worker_queues(settings, conn)
    assert queues.live() == ["deliveries"]  # no slot worker: the shared queue
    for slot in ("1", "2"):
        _register(conn, slot_queue_name("deliveries", slot), pid=os.getpid(), hostname="h")
    queues = worker_queues(settings, conn)
    assert queues.live() == ["deliveries.1", "deliveries.2"]
    ids = [f"dsp_{n}" for n in range(8)]
    enqueue_deliveries(queues, ids, settings.job_timeout, batch=2)  # four jobs
    counts = queues.counts()
    assert counts == {"deliveries.1": 2, "deliveries.2": 2}, counts
    assert _still_queued(queues, ids) == set(ids)  # each waits, in its job or the one it rides
    # A job whose hash says "queued" but whose id is in no queue is not waiting: the
    # first job (dsp_0, with dsp_1 riding in it) taken out of deliveries.1 by hand.
    first_slot = queues.queue("deliveries.1")
    assert first_slot.job_ids[0] == "deliver-dsp_0"
    conn.lrem(first_slot.key, 1, "deliver-dsp_0")
    assert _still_queued(queues, ids) == set(ids) - {"dsp_0", "dsp_1"}
    conn.lpush(first_slot.key, "deliver-dsp_0")
    enqueue_deliveries(Queue("deliveries.9", connection=conn), ["dsp_lost"], 60)
    assert _still_queued(queues, ["dsp_lost"]) == set()  # nobody serves deliveries.9
    enqueue_deliveries(queues, ["dsp_lost"], 60)  # so the sweep gives it to a live slot
    assert _still_queued(queues, ["dsp_lost"]) == {"dsp_lost"}
    assert sum(queues.counts().values()) == 5


def test_waiting_ids_reads_a_queue_once_when_asked_about_many_of_its_jobs(
    settings: Settings,
) -> None:
    """Asked about many jobs of one queue (a sweep under a backlog), the answer is read from
    one copy of the queue's list instead of a scan per job; both ways give the same set."""
    conn = redis.Redis.from_url(settings.redis_url)  # flushed by the settings fixture
    queues = worker_queues(settings, conn)
    ids = [f"dsp_many_{n}" for n in range(3 * SCAN_WHOLE_QUEUE_FROM)]
    enqueue_deliveries(queues, ids, settings.job_timeout, batch=1)
    jobs = [delivery_job_id(d) for d in ids]
    shared = queues.queue("deliveries")
    conn.lrem(shared.key, 1, jobs[5])  # "queued" in its hash, in no list: not waiting
    asked = [*jobs, "deliver-dsp_never_enqueued"]
    many = queues.waiting_ids(asked)
    assert many == set(jobs) - {jobs[5]}
    few = set().union(*(queues.waiting_ids(asked[i : i + 2]) for i in range(0, len(asked), 2)))
    assert few == many  # below the threshold: one LPOS per job, the same answer


def test_a_slot_that_would_break_rqs_queue_list_is_refused_before_anything_starts(
    settings: Settings,
):
    from click.testing import CliRunner

    from gateway.cli import cli

    env = {"GATEWAY_DATA_DIR": str(settings.data_dir), "GATEWAY_REDIS_URL": settings.redis_url}
    for bad in ("a,b", "", "x" * 41, "two words"):
        result = CliRunner().invoke(cli, ["worker", "--slot", bad], env=env)
        assert result.exit_code == 2, (bad, result.output)
        assert "Invalid value for --slot" in result.output
    assert slot_queue_name("deliveries", "host1-2") == "deliveries.host1-2"
