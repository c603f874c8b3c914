"""`make bench` / `python -m bench`: the floor, then the real gateway over HTTP, in one run.

Phases against one running product (`python -m gateway run`): a warm-up; one document per
request at the maximum rate (closed loop, --seconds); the same at 70 % of the rate it
sustained at the end of that phase (open loop, half as long: the latency target); the batch
endpoint (ZIPs, half as long; skipped with a note when it answers 404/405); a profiled
phase (py-spy); then the delivery backlog drains. With --workers N the run uses N rq
workers and, before it, short runs with 1..N workers (the same protocol each) show how
accept and delivery grow.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from bench import analysis
from bench.profile import record, summarise
from bench.stack import PROJECT_ROOT, Stack, free_port

RESULTS = PROJECT_ROOT / "bench" / "results"


def run_load(spec: dict[str, Any], work: Path, name: str) -> dict[str, Any]:
    """One phase in a separate generator process; returns its records and CPU time."""
    spec_path, out = work / f"{name}.spec.json", work / f"{name}.out.json"
    spec_path.write_text(json.dumps(spec))
    subprocess.run(
        [sys.executable, "-m", "bench.load", str(spec_path), str(out)], cwd=PROJECT_ROOT, check=True
    )
    return json.loads(out.read_text())  # type: ignore[no-any-return]


def generator_ceiling(work: Path, connections: int) -> dict[str, Any]:
    """The generator against a server that answers at once: what it can drive at most."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "bench.load", "--serve", str(port)], cwd=PROJECT_ROOT
    )
    try:
        time.sleep(0.8)
        spec = {"base": f"http://127.0.0.1:{port}", "key": "x", "mode": "closed"}
        spec.update(connections=connections, seconds=3, rate=0)
        fig = analysis.phase_figures(run_load(spec, work, "ceiling"))
    finally:
        server.terminate()
        server.wait(5)
    return {
        "requests_per_s": fig["requests_per_s"],
        "cpu_us_per_request": round(fig["generator_cpu_s"] / max(1, fig["requests"]) * 1e6, 1),
    }


@contextlib.contextmanager
def database(postgres: bool) -> Iterator[str]:
    """'' (the embedded SQLite) or the URL of a throwaway PostgreSQL cluster on loopback."""
    if not postgres:
        yield ""
        return
    from tests.e2e.postgres import destroy_cluster, start_cluster

    cluster = start_cluster("gateway")
    try:
        yield cluster.url
    finally:
        destroy_cluster(cluster)


def drain(stack: Stack, timeout: float) -> float:
    """Wait until every declaration is final (or the timeout); returns the seconds waited."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if analysis.unfinished(stack.db_url) == 0:
            break
        time.sleep(1.0)
    return round(time.monotonic() - start, 1)


def _spec(
    stack: Stack, mode: str, seconds: float, connections: int, **extra: Any
) -> dict[str, Any]:
    return {
        "base": stack.base,
        "key": stack.api_key,
        "mode": mode,
        "seconds": seconds,
        "connections": connections,
        "rate": extra.pop("rate", 0),
        **extra,
    }


def drive(stack: Stack, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """All phases against one running stack; returns phases, profile and timings."""
    phases: dict[str, dict[str, Any]] = {}
    marks: list[tuple[str, float, float]] = []
    run_load(_spec(stack, "closed", 4, args.connections), work, "warmup")
    cpu0, wall0 = stack.cpu_times(), time.time()
    sys_cpu0 = psutil.cpu_times()

    def phase(name: str, spec: dict[str, Any]) -> dict[str, Any]:
        print(f"  phase {name} ({spec['mode']}, {spec['seconds']} s)", flush=True)
        phases[name] = result = run_load(spec, work, name)
        marks.append((name, result["start"], result["end"]))
        return analysis.phase_figures(result)

    before = stack.cpu_times()
    single = phase("single_max", _spec(stack, "closed", args.seconds, args.connections))
    after = stack.cpu_times()
    # CPU the gateway spent per accepted declaration at full load (gunicorn, relay, workers;
    # receipts included): compared with the floor's CPU per document, robust to contention.
    spent = sum(after.get(r, 0) - before.get(r, 0) for r in ("gunicorn", "relay", "worker"))
    single["gateway_cpu_ms_per_accepted"] = round(spent / max(1, single["accepted"]) * 1000, 2)
    # Requests/s for 70 % of the accepts it sustained at the end of the full-load phase.
    rate70 = max(1.0, 0.7 * single["accepted_per_s_last_third"] / 0.85)
    at70 = phase("single_70pct", _spec(stack, "open", args.seconds / 2, 32, rate=rate70))
    batch_spec = _spec(stack, "batch", args.seconds / 2, 2, batch_size=args.batch_size, wait=60)
    batch = phase("batch", batch_spec)
    profile_raw = work / "profile.txt"
    assert stack.proc is not None
    spy = record(stack.proc.pid, args.profile_seconds, profile_raw)
    prof = phase("profiled", _spec(stack, "closed", args.profile_seconds, args.connections))
    if spy is not None:
        spy.wait(args.profile_seconds + 30)
    load_end = time.time()
    cpu1, sys_cpu1 = stack.cpu_times(), psutil.cpu_times()
    print("  draining the delivery backlog ...", flush=True)
    drained = drain(stack, args.drain)
    return {
        "phases": phases,
        "marks": marks,
        "single": single,
        "at70": at70,
        "batch": batch,
        "profiled": prof,
        "rate70": rate70,
        "wall": (wall0, load_end),
        "drain_s": drained,
        "cpu": (cpu0, cpu1),
        "sys_cpu": (sys_cpu0, sys_cpu1),
        "profile": summarise(profile_raw) if profile_raw.exists() else None,
    }


def _busy(a: Any, b: Any) -> float:
    idle = (b.idle - a.idle) + (getattr(b, "iowait", 0) - getattr(a, "iowait", 0))
    return sum(b) - sum(a) - idle


def contention(run: dict[str, Any]) -> dict[str, Any]:
    """CPU the product and the generator used, against what the whole machine was busy with."""
    cpu0, cpu1 = run["cpu"]
    ours = {k: round(cpu1.get(k, 0) - cpu0.get(k, 0), 1) for k in cpu1}
    gen = sum(
        p["cpu_seconds"] for p in run["phases"].values() if p is not run["phases"].get("warmup")
    )
    busy = _busy(*run["sys_cpu"])
    wall = run["wall"][1] - run["wall"][0]
    others = max(0.0, busy - sum(ours.values()) - gen)
    return {
        "cpu_seconds_by_role": ours,
        "generator_cpu_seconds": round(gen, 1),
        "machine_busy_cpu_seconds": round(busy, 1),
        "other_processes_cpu_seconds": round(others, 1),
        "other_processes_cores": round(others / wall, 2),
        "wall_seconds": round(wall, 1),
    }


def scaling(args: argparse.Namespace, work: Path, db_url_factory: Any) -> list[dict[str, Any]]:
    """Accept and delivery rates with 1..N rq workers, each the same short protocol on a
    fresh stack (a closed-loop phase of half --seconds, then the drain)."""
    out = []
    for k in range(1, args.workers + 1):
        with db_url_factory() as url:
            stack = Stack(
                Path(tempfile.mkdtemp(prefix=f"bench-w{k}-")), k, url, args.worker_class or ""
            )
            stack.start()
            try:
                run_load(_spec(stack, "closed", 3, args.connections), work, f"w{k}-warmup")
                fig = analysis.phase_figures(
                    run_load(
                        _spec(stack, "closed", args.seconds / 2, args.connections), work, f"w{k}"
                    )
                )
                drain(stack, args.drain)
                e2e = analysis.e2e_figures(analysis.declaration_times(stack.db_url))
            finally:
                stack.stop()
        out.append({"workers": k, "accept_rate_single": fig["accepted_per_s"], **e2e})
        print(f"  {k} worker(s): accept {fig['accepted_per_s']}/s, e2e {e2e['e2e_rate']}/s")
    return out
