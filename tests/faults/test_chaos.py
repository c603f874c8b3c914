"""Fault injection with real processes (RELIABILITY.md, T1): while declarations flow, SIGKILL
work horses mid-delivery and a worker parent, restart Redis (once after FLUSHALL), put customs
in an outage, make every authority fail, lose acks and time out, and restart the gateway
mid-batch, hold the database's write lock for 5 s, and send some submissions twice at
once. Then, counted from the sandbox's own records and the gateway's timelines: every
accepted declaration is final, none lost, no effect twice, one release per consignment.

Each test runs on SQLite (two rq workers) and on PostgreSQL (Debian's binaries, a throwaway
cluster on loopback, three rq workers); see conftest.py.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine
from sqlalchemy.exc import OperationalError

from tests.faults.harness import FaultStack
from tests.faults.load import Load, audit, wait_final

NOISE = [  # every authority misbehaves a little (RELIABILITY.md T1), answers a bit slowly
    {"authority": "customs", "error_rate": 0.05, "ack_lost_rate": 0.03, "timeout_rate": 0.02,
     "timeout_seconds": 3, "delay": 0.05},
    {"authority": "inspection", "error_rate": 0.05, "ack_lost_rate": 0.03, "delay": 0.05},
    {"authority": "port", "error_rate": 0.05, "ack_lost_rate": 0.03, "timeout_rate": 0.01,
     "timeout_seconds": 3, "delay": 0.1},
]  # fmt: skip


# What Chaos.note records that is a fault (the rest are recoveries it noted).
FAULT_KINDS = {
    "sigkill_work_horse", "sigkill_worker_parent", "redis_restart", "customs_outage",
    "gateway_restart", "database_write_lock",
}  # fmt: skip


@dataclass
class Chaos:
    """Runs the faults against a stack while a load flows, and keeps a log of what it did."""

    stack: FaultStack
    load: Load
    done: list[dict[str, Any]] = field(default_factory=list)
    unexpected_exits: list[str] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)
    last_fault: float = field(default_factory=time.monotonic)

    def note(self, kind: str, **info: Any) -> None:
        self.last_fault = time.monotonic()
        self.done.append({"t": round(self.last_fault - self.t0, 1), "kind": kind, **info})

    def admin(self, path: str, body: dict[str, Any]) -> None:
        httpx.post(self.stack.sandbox + path, json=body, timeout=10).raise_for_status()

    def watch(self) -> None:
        """A launcher that died without our doing is a finding; restart it and go on."""
        if not self.stack.gateway_alive():
            code = self.stack.gateway_proc.returncode if self.stack.gateway_proc else None
            if not self.stack.expected_exit:
                self.unexpected_exits.append(f"launcher exited ({code}) at {self.elapsed():.1f} s")
            self.stack.start_gateway()
            self.note("gateway_restarted_after_exit", code=code)

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def sleep(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self.watch()
            time.sleep(0.1)

    def until_submitted(self, share: float, timeout: float = 60) -> None:
        """Wait until ``share`` of the load has been answered (the faults hit the flow)."""
        end = time.monotonic() + timeout
        while self.load.submitted() < share * self.load.messages and time.monotonic() < end:
            self.watch()
            if self.load.done.is_set():
                return
            time.sleep(0.05)

    # ------------------------------------------------------------------ faults

    def noise(self, on: bool) -> None:
        if on:
            for body in NOISE:
                self.admin("/admin/faults", body)
        else:
            self.admin("/admin/reset", {})
        self.note("authority_noise_" + ("on" if on else "off"))

    def kill_horse(self) -> None:
        self.watch()
        pid = self.stack.kill_work_horse(timeout=5)
        self.note("sigkill_work_horse", pid=pid)

    def kill_worker_parent(self) -> None:
        self.watch()
        before = {w.pid for w in self.stack.workers_procs()}
        pid = self.stack.kill_worker_parent()
        self.note("sigkill_worker_parent", pid=pid)
        # The launcher starts a dead worker again (its work is in the database): wait for
        # the replacement, and go on; a launcher that died instead is restarted by watch().
        end = time.monotonic() + 15
        while time.monotonic() < end:
            now = {w.pid for w in self.stack.workers_procs()}
            if len(now) >= len(before) and now != before:
                self.note("worker_restarted_by_launcher")
                return
            self.sleep(0.2)
        self.unexpected_exits.append(f"worker {pid} was not replaced within 15 s")

    def restart_redis(self, flush: bool) -> None:
        self.stack.restart_redis(flush=flush, down_seconds=1.5)
        self.note("redis_restart", flush=flush)

    def outage(self, seconds: float) -> None:
        self.admin("/admin/faults", {"authority": "customs", "outage_seconds": seconds})
        self.note("customs_outage", seconds=seconds)

    def restart_gateway(self) -> None:
        self.stack.restart_gateway()
        self.note("gateway_restart")

    def lock_database(self, seconds: float) -> None:
        """Hold the database's write lock from outside the gateway for ``seconds`` (an
        operator's long migration, a backup): SQLite's BEGIN IMMEDIATE, or PostgreSQL's
        EXCLUSIVE lock on the declarations every submission and receipt writes. The
        gateway may answer 503 with Retry-After meanwhile, never 500, and loses nothing."""
        url = self.stack.database_url or f"sqlite:///{self.stack.data_dir / 'gateway.db'}"
        sqlite = url.startswith("sqlite")
        engine = create_engine(url, connect_args={"timeout": 30} if sqlite else {})
        statement = "BEGIN IMMEDIATE" if sqlite else "LOCK TABLE declarations IN EXCLUSIVE MODE"
        try:
            for attempt in range(5):  # the lock queues behind the gateway's transactions
                with engine.connect() as conn:
                    try:
                        conn.exec_driver_sql(statement)
                    except OperationalError:  # e.g. chosen as a deadlock's victim
                        conn.rollback()
                        time.sleep(0.2 * (attempt + 1))
                        continue
                    self.note("database_write_lock", seconds=seconds)
                    time.sleep(seconds)
                    conn.rollback()
                    self.note("database_write_lock_released")
                    return
            self.unexpected_exits.append("the database write lock was never taken")
        finally:
            engine.dispose()


def run_chaos(stack: FaultStack, load: Load, *, drain: float) -> tuple[Any, Chaos, float]:
    chaos = Chaos(stack, load)
    load.start()
    chaos.noise(True)
    chaos.until_submitted(0.1)
    for _ in range(3):
        chaos.kill_horse()
        chaos.sleep(0.3)
    chaos.restart_redis(flush=False)
    chaos.until_submitted(0.3)
    chaos.outage(4)
    for _ in range(2):
        chaos.kill_horse()
        chaos.sleep(0.3)
    chaos.kill_worker_parent()
    chaos.until_submitted(0.5)
    chaos.restart_redis(flush=True)
    chaos.until_submitted(0.7)
    chaos.restart_gateway()
    chaos.lock_database(5)
    chaos.kill_horse()
    chaos.until_submitted(1.0, timeout=120)
    chaos.kill_horse()
    chaos.sleep(2)
    chaos.noise(False)
    load.done.wait(60)
    final = wait_final(stack, set(load.accepted), timeout=drain, tick=chaos.watch)
    drained = time.monotonic() - chaos.last_fault
    chaos.watch()
    return final, chaos, drained


def _report(a: Any, chaos: Chaos, drained: float, load: Load) -> str:
    return json.dumps(
        {
            "failures": a.failures,
            "facts": a.facts,
            "faults": chaos.done,
            "unexpected_exits": chaos.unexpected_exits,
            "drain_seconds_after_last_fault": round(drained, 1),
        },
        indent=1,
        default=str,
    )


def _check(
    stack: FaultStack, load: Load, final: Any, chaos: Chaos, drained: float, proof: Any = None
) -> None:
    a = audit(stack, load, final)
    server_errors = {k: v for k, v in load.status_counts.items() if k == 500}
    a.check(not server_errors, "the accept path answered 500", server_errors)
    # A launcher that died by itself (a worker crashes when Redis goes away mid-job, so the
    # launcher stops everything) is restarted by Chaos.watch and reported in the facts; it is
    # asserted on its own in test_redis.py.
    a.facts["unexpected_launcher_exits"] = chaos.unexpected_exits
    report = _report(a, chaos, drained, load)
    (stack.data_dir / "fault-report.json").write_text(report)
    print(report)
    if proof is not None:  # the figures the README's reliability table shows
        sandbox = a.facts.get("sandbox", {})
        proof.add(
            "T1",
            {
                "backend": "PostgreSQL" if stack.database_url else "SQLite",
                "declarations": a.facts.get("accepted_declarations"),
                "faults": sum(1 for f in chaos.done if f["kind"] in FAULT_KINDS),
                "fault_kinds": sorted({f["kind"] for f in chaos.done} & FAULT_KINDS),
                "authority_noise": NOISE,
                "lost": a.facts.get("lost"),
                "unexpected": a.facts.get("unexpected"),
                "second_releases": sandbox.get("second_releases"),
                "server_errors": sum(server_errors.values()),
                "drain_seconds": round(drained, 1),
                "failures": len(a.failures),
            },
        )
    assert not a.failures, report


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_every_fault_while_200_documents_flow(
    fault_stack: Any, database_url: str, proof: Any
) -> None:
    """The whole fault set on a small batch on the embedded defaults: 40 messages x 5
    inventory lists (the 1,000-document run below covers PostgreSQL in every `make test`)."""
    stack = fault_stack()
    load = Load(stack, messages=40, docs=5, threads=3, pause=0.15)
    final, chaos, drained = run_chaos(stack, load, drain=90)
    _check(stack, load, final, chaos, drained, proof)


PROVE_ONLY = pytest.mark.skipif(
    not os.environ.get("GATEWAY_PROVE"), reason="part of `make prove` (the suite's time budget)"
)


@pytest.mark.parametrize(
    "database_url",
    ["postgres", pytest.param("sqlite", marks=PROVE_ONLY)],
    indirect=True,
)
def test_every_fault_while_1000_documents_flow(
    fault_stack: Any, database_url: str, proof: Any
) -> None:
    """The issue's scale: 100 messages x 10 inventory lists, every fault, drained within
    100 s of the last one. On PostgreSQL with three workers in every run; on the embedded
    defaults in `make prove`."""
    stack = fault_stack()
    load = Load(stack, messages=100, docs=10, threads=4, pause=0.3)
    started = time.monotonic()
    final, chaos, drained = run_chaos(stack, load, drain=100)
    _check(stack, load, final, chaos, drained, proof)
    took = time.monotonic() - started
    print(f"load, faults and drain took {took:.0f} s")
    if os.environ.get("GATEWAY_PROVE"):  # the bound; a busy CI machine only reports
        assert took < 120, f"load, faults and drain took {took:.0f} s (bound: 120 s)"
