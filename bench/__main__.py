"""`python -m bench [--seconds S] [--workers N] [--postgres]`: see bench/run.py."""

from __future__ import annotations

import argparse
import functools
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench import analysis, report
from bench.floor import measure_floor
from bench.run import RESULTS, contention, database, drive, generator_ceiling, scaling
from bench.stack import Stack
from gateway.settings import load_settings


def parse(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--seconds", type=float, default=60, help="max-load phase length (s)")
    p.add_argument("--workers", type=int, default=1, help="rq workers (and 1..N scaling runs)")
    p.add_argument("--postgres", action="store_true", help="a throwaway PostgreSQL on loopback")
    p.add_argument(
        "--worker-class", choices=("fork", "simple"), help="rq worker class (default: settings)"
    )
    p.add_argument("--connections", type=int, default=8, help="concurrent connections")
    p.add_argument("--batch-size", type=int, default=100, help="documents per ZIP")
    p.add_argument("--profile-seconds", type=float, default=10, help="py-spy phase length (s)")
    p.add_argument("--drain", type=float, default=120, help="longest wait for the backlog (s)")
    p.add_argument("--floor-seconds", type=float, default=6, help="floor measurement (s)")
    p.add_argument("--out", type=Path, default=RESULTS / "latest.json")
    return p.parse_args(argv)


def _rss_by_role(stack: Stack, wall: tuple[float, float]) -> dict[str, list[float]]:
    """RSS of each part at the start and at the end of the load: which part grows."""
    inside = [by for at, by in stack.rss if wall[0] <= at <= wall[1]]
    if not inside:
        return {}
    first, last = inside[0], inside[-1]
    return {k: [round(first.get(k, 0), 1), round(last.get(k, 0), 1)] for k in sorted(last)}


def figures(
    args: argparse.Namespace,
    floor: dict[str, Any],
    run: dict[str, Any],
    stack: Stack,
    ceiling: dict[str, Any],
) -> dict[str, Any]:
    single, at70, batch = run["single"], run["at70"], run["batch"]
    times = analysis.declaration_times(stack.db_url)
    e2e = analysis.e2e_figures(times)
    rss = [
        sum(v for k, v in by.items() if k in ("launcher", "gunicorn", "relay", "worker"))
        for at, by in stack.rss
        if run["wall"][0] <= at <= run["wall"][1]
    ]
    batch_missing = any(s in batch["statuses"] for s in ("404", "405")) and not batch["accepted"]
    cont = contention(run)
    return {
        "accept_rate_single": single["accepted_per_s"],
        "accept_rate_batch": None if batch_missing else batch["accepted_per_s"],
        "batch_note": "POST /api/v1/declarations/batch answered 404/405: the batch endpoint is "
        "not in this build; batch mode skipped"
        if batch_missing
        else None,
        "e2e_rate": e2e["e2e_rate"],
        "floor_rate": floor["floor_rate"],
        "floor_ratio": round(single["accepted_per_s"] / floor["floor_rate"], 3),
        # The same comparison in CPU per accepted declaration (floor / gateway): what share of
        # the gateway's CPU is the work itself, whatever else the machine was doing.
        "floor_cpu_ratio": round(
            1000 / floor["floor_rate"] / single["gateway_cpu_ms_per_accepted"], 3
        ),
        "gateway_cpu_ms_per_accepted": single["gateway_cpu_ms_per_accepted"],
        "floor_cpu_ms_per_accepted": round(1000 / floor["floor_rate"], 2),
        "p50_ms": at70["p50_ms"],
        "p95_ms": at70["p95_ms"],
        "p99_ms": at70["p99_ms"],
        "p50_ms_max_load": single["p50_ms"],
        "p95_ms_max_load": single["p95_ms"],
        "p99_ms_max_load": single["p99_ms"],
        "release_p50_ms": e2e.get("release_p50_ms"),
        "release_p99_ms": e2e.get("release_p99_ms"),
        "peak_rss_mb": round(max(rss, default=0), 1),
        "rss_start_mb": round(rss[0], 1) if rss else None,
        "rss_end_mb": round(rss[-1], 1) if rss else None,
        "rss_growth_pct": round((rss[-1] / rss[0] - 1) * 100, 1) if rss else None,
        "rss_by_role_start_end_mb": _rss_by_role(stack, run["wall"]),
        "contention_note": f"2-core machine shared with other work: other processes used "
        f"{cont['other_processes_cores']} cores on average during the run; the generator "
        f"{round(cont['generator_cpu_seconds'] / cont['wall_seconds'], 2)} cores",
        "e2e": e2e,
        "drain_seconds": run["drain_s"],
        "phases": {
            "single_max": single,
            "single_70pct": {**at70, "target_rate": round(run["rate70"], 1)},
            "batch": batch,
            "profiled": run["profiled"],
        },
        "profile": run["profile"],
        "contention": cont,
        "generator_ceiling": ceiling,
        "floor": floor,
        "config": {
            "seconds": args.seconds,
            "workers": args.workers,
            "connections": args.connections,
            "batch_size": args.batch_size,
            "database": "postgresql" if args.postgres else "sqlite",
            "worker_class": args.worker_class or load_settings().worker_class,
            "gunicorn": "2 workers x 4 threads (as make run)",
            "sandbox": "fast mode: delays 0, nothing inspected or held",
        },
        "machine": report.machine(),
        "git": report.git_commit(),
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: list[str]) -> int:
    args = parse(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    start_machine = report.machine()
    print("bench: the floor (primitives alone, one core) ...", flush=True)
    floor = measure_floor(args.floor_seconds)
    print("bench: the load generator's own ceiling ...", flush=True)
    ceiling = generator_ceiling(work, args.connections)
    scaled = (
        scaling(args, work, functools.partial(database, args.postgres)) if args.workers > 1 else []
    )
    with database(args.postgres) as url:
        stack = Stack(work / "gateway", args.workers, url, worker_class=args.worker_class or "")
        print(
            f"bench: the gateway over HTTP ({args.workers} rq worker(s), "
            f"{'PostgreSQL' if url else 'SQLite'}) ...",
            flush=True,
        )
        stack.start()
        try:
            run = drive(stack, args, work)
            figs = figures(args, floor, run, stack, ceiling)
            t0 = min(m[1] for m in run["marks"])
            series = analysis.series(run["phases"], analysis.declaration_times(stack.db_url), t0)
        finally:
            stack.stop()
    figs["machine"] = start_machine
    if scaled:
        figs["scaling"] = scaled
    figs["verdicts"] = report.verdicts(figs)
    report.write_json(args.out, figs)
    marks = [(n, s - t0, e - t0) for n, s, e in run["marks"]]
    png = args.out.with_suffix(".png")
    report.plot(
        png,
        series,
        marks,
        f"bench {figs['measured_at']} {figs['git']['commit'][:10]} "
        f"({figs['config']['database']}, {args.workers} worker(s))",
    )
    print(report.table(figs))
    print(f"  written: {args.out} and {png}; work files in {work}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
