"""bench/results/latest.json, the short table on stdout, and the PNG of the run."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

import psutil

from bench.stack import PROJECT_ROOT

TARGETS = {
    "accept_rate_batch": (">=", 1400),
    "accept_rate_single": (">=", 600),
    "p99_ms": ("<", 50),
    "e2e_rate": (">=", 500),
    "floor_ratio": (">=", 0.5),
}


def machine() -> dict[str, Any]:
    """What the figures were measured on, and how busy it was with other work."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def git_commit() -> dict[str, Any]:
    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=False
        )
        return done.stdout.strip()

    return {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "-uno"))}


def verdicts(figures: dict[str, Any]) -> dict[str, str]:
    out = {}
    for key, (op, target) in TARGETS.items():
        value = figures.get(key)
        if value is None:
            out[key] = "not measured"
            continue
        ok = value >= target if op == ">=" else value < target
        out[key] = f"{'PASS' if ok else 'MISS'} ({value} {op} {target})"
    return out


def table(figures: dict[str, Any]) -> str:
    v = verdicts(figures)
    rows = [
        ("floor (primitives, 1 core)", f"{figures['floor_rate']} /s", ""),
        (
            "accept, one per request (max)",
            f"{figures['accept_rate_single']} /s",
            v["accept_rate_single"],
        ),
        (
            "accept, batch endpoint",
            f"{figures.get('accept_rate_batch')} /s",
            v["accept_rate_batch"],
        ),
        ("accept / floor", f"{figures['floor_ratio']}", v["floor_ratio"]),
        (
            "CPU per accepted: floor / gateway",
            f"{figures['floor_cpu_ms_per_accepted']} / {figures['gateway_cpu_ms_per_accepted']} ms",
            f"(ratio {figures['floor_cpu_ratio']})",
        ),
        (
            "p50 / p95 / p99 at 70 % load",
            f"{figures['p50_ms']} / {figures['p95_ms']} / {figures['p99_ms']} ms",
            v["p99_ms"],
        ),
        (
            "p50 / p99 at max load",
            f"{figures['p50_ms_max_load']} / {figures['p99_ms_max_load']} ms",
            "",
        ),
        ("end to end (accept -> released)", f"{figures['e2e_rate']} /s", v["e2e_rate"]),
        (
            "time to release p50 / p99",
            f"{figures['release_p50_ms']} / {figures['release_p99_ms']} ms",
            "",
        ),
        ("peak RSS (gateway processes)", f"{figures['peak_rss_mb']} MB", ""),
        ("RSS growth over the run", f"{figures['rss_growth_pct']} %", ""),
    ]
    width = max(len(r[0]) for r in rows)
    lines = [f"  {a:<{width}}  {b:<24} {c}" for a, b, c in rows]
    if figures.get("batch_note"):
        lines.append(f"  note: {figures['batch_note']}")
    lines.append(f"  contention: {figures['contention_note']}")
    return "\n".join(lines)


def write_json(path: Path, figures: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(figures, indent=2, ensure_ascii=False) + "\n")


def plot(
    path: Path, series: dict[str, Any], marks: list[tuple[str, float, float]], title: str
) -> None:
    """Throughput (accepted and released per second) above latency (p50, p99), by second."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 7), sharex=True)
    xs = series["t"]
    top.plot(xs, series["accepted"], label="accepted /s", color="tab:blue")
    top.plot(xs, series["released"], label="released /s (end to end)", color="tab:green")
    top.set_ylabel("declarations / s")
    top.legend(loc="upper right")
    top.grid(alpha=0.3)
    p50 = [(x, y) for x, y in zip(xs, series["p50_ms"], strict=True) if y is not None]
    p99 = [(x, y) for x, y in zip(xs, series["p99_ms"], strict=True) if y is not None]
    if p50:
        bottom.plot(*zip(*p50, strict=True), label="p50 acceptance", color="tab:blue")
    if p99:
        bottom.plot(*zip(*p99, strict=True), label="p99 acceptance", color="tab:red")
    bottom.axhline(50, color="grey", linestyle="--", linewidth=0.8, label="50 ms target")
    bottom.set_ylabel("latency (ms), one per request")
    bottom.set_xlabel("seconds since the first request")
    bottom.set_yscale("log")
    bottom.legend(loc="upper right")
    bottom.grid(alpha=0.3)
    for i, (name, start, end) in enumerate(marks):
        for ax in (top, bottom):
            ax.axvspan(start, end, color=f"C{i % 10}", alpha=0.07)
        # Stagger the names: short phases (a skipped batch) would print over each other.
        top.text(start, top.get_ylim()[1] * (0.92 - 0.08 * (i % 3)), name, fontsize=8)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
