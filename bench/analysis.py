"""Figures from what the run left behind: the generator's records and the gateway's database."""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from sqlalchemy import create_engine, func, select

from gateway.persistence import tables as t
from gateway.persistence.repository import as_utc

RELEASED = ("released", "closed")
FINAL = ("released", "closed", "rejected", "cancelled", "held", "returned")


def percentile(values: list[float], q: float) -> float | None:
    """The q-th percentile (0..100) by nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def ms(value: float | None) -> float | None:
    return None if value is None else round(value * 1000, 1)


def phase_figures(result: dict[str, Any]) -> dict[str, Any]:
    """Rates, status counts and acceptance latency of one generator phase."""
    records = result["records"]
    last = max((r[0] + r[1] for r in records), default=result["end"])
    # A phase that ended at once (e.g. no batch endpoint) has no rate worth dividing by.
    duration = max(1.0, last - result["start"])
    accepted = sum(r[5] for r in records)
    statuses: dict[str, int] = defaultdict(int)
    for r in records:
        statuses[str(r[2])] += 1
    # The rate it sustains at the end (the start is faster while the database and the
    # delivery backlog are small): what the 70 % load point is taken from.
    tail_from = result["start"] + duration * 2 / 3
    tail = sum(r[5] for r in records if r[0] + r[1] >= tail_from)
    ok = [r[1] for r in records if r[2] in (200, 202)]
    every = [r[1] for r in records]
    return {
        "seconds": round(duration, 2),
        "requests": len(records),
        "requests_per_s": round(len(records) / duration, 1),
        "accepted": accepted,
        "accepted_per_s": round(accepted / duration, 1),
        "accepted_per_s_last_third": round(tail / (duration / 3), 1),
        "statuses": dict(statuses),
        "p50_ms": ms(percentile(ok, 50)),
        "p95_ms": ms(percentile(ok, 95)),
        "p99_ms": ms(percentile(ok, 99)),
        "p99_ms_all_answers": ms(percentile(every, 99)),
        "generator_cpu_s": round(result["cpu_seconds"], 2),
        "generator_cpu_share_of_core": round(result["cpu_seconds"] / duration, 3),
    }


def declaration_times(db_url: str) -> list[tuple[float, float | None, str]]:
    """(accepted at, first released at or None, status) of every declaration, epoch seconds."""
    engine = create_engine(db_url)
    released = (
        select(t.events.c.declaration_id, func.min(t.events.c.at).label("at"))
        .where(t.events.c.status.in_(RELEASED))
        .group_by(t.events.c.declaration_id)
        .subquery()
    )
    query = select(t.declarations.c.created_at, released.c.at, t.declarations.c.status).join(
        released, released.c.declaration_id == t.declarations.c.id, isouter=True
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    engine.dispose()
    out = []
    for created, rel, status in rows:
        c = as_utc(created)
        r = as_utc(rel)
        out.append((c.timestamp(), r.timestamp() if r is not None else None, status))
    return out


def unfinished(db_url: str) -> int:
    """Declarations not yet in a final status."""
    engine = create_engine(db_url)
    with engine.connect() as conn:
        n = conn.execute(
            select(func.count())
            .select_from(t.declarations)
            .where(t.declarations.c.status.not_in(FINAL))
        ).scalar_one()
    engine.dispose()
    return int(n)


def e2e_figures(times: list[tuple[float, float | None, str]]) -> dict[str, Any]:
    """Clearances per second (sustained and best 10 s) and the time from accept to release."""
    released = [(c, r) for c, r, _s in times if r is not None]
    if not released:
        return {"e2e_rate": 0.0, "released": 0, "accepted": len(times)}
    first, last = min(c for c, _r in released), max(r for _c, r in released)
    per_second: dict[int, int] = defaultdict(int)
    for _c, r in released:
        per_second[int(r)] += 1
    seconds = sorted(per_second)
    best = 0.0
    for s in seconds:
        best = max(best, sum(per_second.get(s + i, 0) for i in range(10)) / 10)
    to_release = [r - c for c, r in released]
    return {
        "e2e_rate": round(len(released) / max(1e-9, last - first), 1),
        "e2e_rate_best_10s": round(best, 1),
        "released": len(released),
        "accepted": len(times),
        "not_final": sum(1 for _c, _r, s in times if s not in FINAL),
        "release_p50_ms": ms(percentile(to_release, 50)),
        "release_p99_ms": ms(percentile(to_release, 99)),
    }


def series(
    phases: dict[str, dict[str, Any]], times: list[tuple[float, float | None, str]], t0: float
) -> dict[str, Any]:
    """Per-second accepted, released and latency (p50, p99 of accepted) for the plot."""
    accepted: dict[int, int] = defaultdict(int)
    latencies: dict[int, list[float]] = defaultdict(list)
    for result in phases.values():
        for sent, lat, status, _kind, _lines, acc in result["records"]:
            second = int(sent + lat - t0)
            accepted[second] += acc
            if status in (200, 202) and _kind != "batch":
                latencies[int(sent - t0)].append(lat)
    released: dict[int, int] = defaultdict(int)
    for _c, r, _s in times:
        if r is not None:
            released[int(r - t0)] += 1
    end = max([*accepted, *released, *latencies, 0]) + 1
    xs = list(range(end))
    return {
        "t": xs,
        "accepted": [accepted.get(x, 0) for x in xs],
        "released": [released.get(x, 0) for x in xs],
        "p50_ms": [ms(percentile(latencies.get(x, []), 50)) for x in xs],
        "p99_ms": [ms(percentile(latencies.get(x, []), 99)) for x in xs],
    }
