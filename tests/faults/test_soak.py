"""The soak (RELIABILITY.md, "longer runs"): hours of steady load with a fault every minute,
and nothing may creep: the gateway's memory, Redis's memory and the open files stay flat,
acceptance latency (p99 of the attempts no fault overlapped: what a fault costs is T1's
to judge) at the end is within 1.2x of the start (or half a second: below that it is
noise), and every accepted declaration ends final with no effect twice (the T1 audit).

`make soak` runs it for two hours (`SOAK_SECONDS=600 make soak` for ten minutes); without
GATEWAY_SOAK_SECONDS it is skipped, so `make test` only collects it. It writes
`soak-report.json` (the samples, the faults, the audit) next to the README.
"""

from __future__ import annotations

import json
import os
import statistics
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import psutil
import pytest
import redis

from tests.e2e.stack import PROJECT_ROOT
from tests.faults.harness import FaultStack
from tests.faults.load import Load, audit, wait_final
from tests.faults.test_chaos import FAULT_KINDS, Chaos

SECONDS = float(os.environ.get("GATEWAY_SOAK_SECONDS") or 0)
FAULT_EVERY = float(os.environ.get("GATEWAY_SOAK_FAULT_EVERY") or 60)
SAMPLE_EVERY = max(5.0, min(30.0, SECONDS / 20)) if SECONDS else 30.0
RATE = 1.0  # messages per second, of DOCS inventory lists each
DOCS = 2
GROWTH = 1.10  # memory: the end within 10 % of the start (after the warm-up)
SLOWER = 1.2  # latency: the end's p99 within 1.2x of the start's
SETTLE = 15.0  # seconds after a fault before latency counts again

pytestmark = pytest.mark.skipif(
    not SECONDS, reason="the soak runs with `make soak` (GATEWAY_SOAK_SECONDS)"
)


@dataclass
class Sample:
    t: float
    rss_mb: float  # the launcher and every process under it
    redis_mb: float
    open_files: int  # file descriptors of the same processes
    processes: int


@dataclass
class Sampler:
    """Samples the stack's footprint every SAMPLE_EVERY seconds in the background."""

    stack: FaultStack
    t0: float
    samples: list[Sample] = field(default_factory=list)
    stop: threading.Event = field(default_factory=threading.Event)

    def one(self) -> Sample | None:
        try:
            root = self.stack.launcher()
            procs = [root, *root.children(recursive=True)]
        except (psutil.Error, AssertionError):
            return None
        rss, fds, alive = 0, 0, 0
        for p in procs:
            try:
                rss += p.memory_info().rss
                fds += p.num_fds()
                alive += 1
            except psutil.Error:
                continue
        try:
            used = redis.Redis.from_url(self.stack.redis_url).info("memory")["used_memory"]
        except redis.RedisError:
            return None  # Redis is being restarted: skip this sample
        return Sample(round(time.monotonic() - self.t0, 1), rss / 2**20, used / 2**20, fds, alive)

    def run(self) -> None:
        while not self.stop.wait(SAMPLE_EVERY):
            sample = self.one()
            if sample is not None:
                self.samples.append(sample)


def _faults(chaos: Chaos) -> list[Any]:
    """One fault a minute, in turn: every kind T1 knows, longer outages than T1's."""
    return [
        chaos.kill_horse,
        lambda: chaos.restart_redis(flush=False),
        lambda: chaos.outage(20),
        chaos.kill_worker_parent,
        lambda: chaos.lock_database(5),
        chaos.restart_gateway,
        lambda: chaos.restart_redis(flush=True),
    ]


def _p99(values: list[float]) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100)[98]


def _calm(load: Load, chaos: Chaos) -> list[tuple[float, float]]:
    """(answered, seconds) of the attempts no fault overlapped: from a second before each
    fault to SETTLE seconds after it (a restarted gateway warms up, a lock is held)."""
    windows = [
        (chaos.t0 + f["t"] - 1, chaos.t0 + f["t"] + SETTLE + float(f.get("seconds") or 0))
        for f in chaos.done
        if f["kind"] in FAULT_KINDS
    ]
    return [
        (end, took)
        for end, took in load.latencies
        if not any(start < end and end - took < stop for start, stop in windows)
    ]


def _fifths(calm: list[tuple[float, float]], t0: float) -> tuple[float, float]:
    """p99 acceptance latency of the calm attempts in the second fifth of the run (the
    first warms up) and in the last fifth."""
    span = SECONDS / 5
    early = [s for t, s in calm if span <= t - t0 < 2 * span]
    late = [s for t, s in calm if t - t0 >= 4 * span]
    return _p99(early), _p99(late)


def _flat(samples: list[Sample], key: str) -> tuple[float, float]:
    """(start, end): medians of the first three samples after the warm-up and the last three."""
    warm = [s for s in samples if s.t >= SECONDS / 5] or samples
    values = [float(getattr(s, key)) for s in warm]
    return statistics.median(values[:3]), statistics.median(values[-3:])


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_a_soak_with_a_fault_every_minute_creeps_nowhere(fault_stack: Any, database_url: str):
    stack = fault_stack()
    messages = int(SECONDS * RATE)
    load = Load(stack, messages=messages, docs=DOCS, threads=2, pause=2 / RATE, twins=0.01)
    chaos = Chaos(stack, load)
    t0 = time.monotonic()
    sampler = Sampler(stack, t0)
    threading.Thread(target=sampler.run, name="soak-sampler", daemon=True).start()
    load.start()
    chaos.noise(True)
    faults = _faults(chaos)
    n = 0
    while not load.done.is_set() and time.monotonic() - t0 < SECONDS + 120:
        chaos.sleep(FAULT_EVERY)
        if load.done.is_set():
            break
        faults[n % len(faults)]()
        n += 1
    chaos.noise(False)
    load.done.wait(300)
    final = wait_final(stack, set(load.accepted), timeout=180, tick=chaos.watch)
    sampler.stop.set()
    a = audit(stack, load, final)
    calm = _calm(load, chaos)
    early, late = _fifths(calm, t0)
    checks = {key: _flat(sampler.samples, key) for key in ("rss_mb", "redis_mb", "open_files")}
    report = {
        "seconds": SECONDS,
        "fault_every_seconds": FAULT_EVERY,
        "faults": sum(1 for f in chaos.done if f["kind"] in FAULT_KINDS),
        "fault_log": chaos.done,
        "unexpected_exits": chaos.unexpected_exits,
        "declarations": len(load.accepted),
        "calm_answers": len(calm),
        "p99_seconds_second_fifth": round(early, 3),
        "p99_seconds_last_fifth": round(late, 3),
        "start_end": {k: [round(v, 1) for v in pair] for k, pair in checks.items()},
        "samples": [s.__dict__ for s in sampler.samples],
        "audit_failures": a.failures,
        "audit_facts": a.facts,
    }
    (PROJECT_ROOT / "soak-report.json").write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, default=str)[:4000])
    assert not a.failures, a.failures
    rss, redis_mb, files = checks["rss_mb"], checks["redis_mb"], checks["open_files"]
    assert rss[1] <= rss[0] * GROWTH, f"gateway memory grew {rss[0]:.0f} -> {rss[1]:.0f} MB"
    assert redis_mb[1] <= redis_mb[0] * GROWTH + 1, f"Redis grew {redis_mb} MB"
    assert files[1] <= files[0] + 20, f"open files grew {files[0]:.0f} -> {files[1]:.0f}"
    slower = f"p99 {early:.2f} s at the start, {late:.2f} s at the end"
    assert late <= max(early * SLOWER, 0.5), slower
