"""The proof matrix (shared/RELIABILITY.md, T1-T10): which tests prove each row, and the
report a run writes (`reliability-report.json`) and the README table made from it.

A test belongs to a row by its file. Each row's outcome is counted from pytest's own
reports; tests add figures with the ``proof`` fixture (``proof.add("T1", {...})``). The
README table claims only what the last report shows: a row whose tests were not run says
so, and a row with no tests says it is not built.

    python -m tests.proof files              # the test files of every row (make prove)
    python -m tests.proof readme [REPORT]    # rewrite the README's table from a report
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "reliability-report.json"
README = ROOT / "README.md"
START, END = "<!-- reliability-table:start -->", "<!-- reliability-table:end -->"


@dataclass(frozen=True)
class Row:
    id: str
    title: str
    files: tuple[str, ...]


MATRIX = (
    Row("T1", "chaos: faults while declarations flow, real processes",
        ("tests/faults/test_chaos.py", "tests/faults/test_targeted.py",
         "tests/faults/test_tcp_relay.py", "tests/faults/test_history.py")),
    Row("T2", "stateful model of the clearance engine (hypothesis)",
        ("tests/integration/test_stateful.py", "tests/unit/test_clearance.py",
         "tests/unit/test_properties.py")),
    Row("T3", "hostile XML at every entry point", (
        "tests/unit/test_parsing.py", "tests/integration/test_no_5xx.py",
        "tests/integration/test_hostile_entry_points.py")),
    Row("T4", "signature wrapping and policy, ours and xmlsec1",
        ("tests/unit/test_signing.py", "tests/unit/test_signing_interop.py",
         "tests/unit/test_signing_revocation.py",
         "tests/integration/test_signature_wrapping.py")),
    Row("T5", "fuzzing (atheris)", ("tests/fuzz/test_fuzz.py",)),
    Row("T6", "schemathesis on the served OpenAPI",
        ("tests/integration/test_schemathesis.py", "tests/integration/test_openapi.py")),
    Row("T7", "cross-tenant matrix",
        ("tests/integration/test_access.py", "tests/integration/test_access_postgres.py")),
    Row("T8", "authentication: API keys, port mTLS, webhook signatures, rate limits",
        ("tests/integration/test_accounts.py", "tests/e2e/test_port_mtls.py",
         "tests/unit/test_mtls.py", "tests/integration/test_webhooks.py",
         "tests/integration/test_rate_limits.py", "tests/unit/test_refusals.py",
         "tests/integration/test_tenant_fairness.py")),
    Row("T9", "personal-data leak scan",
        ("tests/e2e/test_personal_data_leak.py", "tests/integration/test_personal_data.py",
         "tests/integration/test_leak_scan.py")),
    Row("T10", "audit hash chain: writers and tampering",
        ("tests/integration/test_audit.py", "tests/integration/test_audit_postgres.py")),
)  # fmt: skip


def row_of(path: str) -> Row | None:
    """The row a test file proves, by its path relative to the project."""
    for row in MATRIX:
        if path in row.files:
            return row
    return None


@dataclass
class Proof:
    """Collects outcomes and figures during a session; writes the report at its end."""

    outcomes: dict[str, dict[str, int]] = field(default_factory=dict)
    durations: dict[str, float] = field(default_factory=dict)
    failed: dict[str, list[str]] = field(default_factory=dict)
    facts: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    started: float = field(default_factory=time.time)

    def outcome(self, row: str, nodeid: str, outcome: str, seconds: float) -> None:
        counts = self.outcomes.setdefault(row, {})
        counts[outcome] = counts.get(outcome, 0) + 1
        self.durations[row] = self.durations.get(row, 0.0) + seconds
        if outcome == "failed":
            self.failed.setdefault(row, []).append(nodeid)

    def add(self, row: str, figures: dict[str, Any]) -> None:
        """A test's figures for its row (a run of T1: declarations, faults, lost ...)."""
        self.facts.setdefault(row, []).append(figures)

    def report(self) -> dict[str, Any]:
        rows = {}
        for row in MATRIX:
            counts = self.outcomes.get(row.id, {})
            rows[row.id] = {
                "title": row.title,
                "tests": row.files,
                "outcomes": counts,
                "seconds": round(self.durations.get(row.id, 0.0), 1),
                "failed": self.failed.get(row.id, []),
                "facts": self.facts.get(row.id, []),
                "verdict": _verdict(row, counts),
            }
        return {
            "generated_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "commit": _commit(),
            "machine": {
                "cores": os.cpu_count(),
                "python": platform.python_version(),
                "platform": platform.platform(),
            },
            "prove": bool(os.environ.get("GATEWAY_PROVE")),
            "postgres": bool(os.environ.get("GATEWAY_PROVE_POSTGRES")),
            "wall_seconds": round(time.time() - self.started, 1),
            "rows": rows,
        }

    def write(self, path: Path) -> None:
        path.write_text(json.dumps(self.report(), indent=1, default=str) + "\n")


def _verdict(row: Row, counts: dict[str, int]) -> str:
    if not row.files:
        return "not built"
    if counts.get("failed"):
        return "failed"
    if not counts.get("passed"):
        return "not run"
    return "passed"


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:
        return None
    return out.stdout.strip() or None


# ------------------------------------------------------------------ the README table


def _t1_summary(facts: list[dict[str, Any]]) -> str:
    """What the chaos runs held: declarations, faults, and the counts that must be zero."""
    if not facts:
        return ""
    parts = []
    for f in facts:
        load = ", ".join(
            x
            for x in (
                f"{f['messages']:,} messages" if f.get("messages") else "",
                f"{f['dispatches_delivered']:,} dispatches"
                if f.get("dispatches_delivered")
                else "",
                f"{f['resubmitted']} resubmitted" if "resubmitted" in f else "",
                f"{f['concurrent_twins']} sent twice at once" if "concurrent_twins" in f else "",
            )
            if x
        )
        kinds = f.get("faults_by_kind") or {}
        by_kind = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items()))
        parts.append(
            f"{f.get('declarations', 0):,} declarations" + (f" ({load})" if load else "")
            + f" on {f.get('backend', '?')}, {f.get('faults', 0)} faults"
            + (f" ({by_kind})" if by_kind else "")
            + " and authority noise"
            + (f", {n} joint inspections" if (n := f.get("joint_inspections")) else "")
            + f": lost {f.get('lost', '?')}, unexpected "
            f"{f.get('unexpected', '?')}, applied twice {f.get('applied_twice', '?')}, second "
            f"releases {f.get('second_releases', '?')}, 5xx {f.get('server_errors', '?')}, "
            f"drained {f.get('drain_seconds', '?')} s after the last fault"
            + (f"; per (authority, key): resent {h.get('resent')}, recovered "
               f"{h.get('recovered')}" if (h := f.get("history")) else "")
        )  # fmt: skip
    return "; ".join(parts)


def _t5_summary(facts: list[dict[str, Any]]) -> str:
    """How many inputs each fuzz target took, and what crashed."""
    if not facts:
        return ""
    runs = ", ".join(f"{f.get('target')} {f.get('runs', 0):,}" for f in facts)
    crashes = sum(int(f.get("crashes", 0)) for f in facts)
    failed = [f"{f.get('target')} (exit {f.get('exit')})" for f in facts if f.get("exit")]
    return f"{len(facts)} targets, inputs: {runs}; crashes {crashes}" + (
        f"; stopped by a finding: {', '.join(failed)}" if failed else ""
    )


def _t3_summary(facts: list[dict[str, Any]]) -> str:
    """The hostile documents sent to every XML entry point, and what came back."""
    return "; ".join(
        f"{f.get('documents')} hostile documents x {f.get('entry_points')} entry points "
        f"(+ in envelopes): {f.get('requests')} requests, 5xx {f.get('server_errors')}, "
        f"over 2 s {f.get('slow')}, canary connections {f.get('canary_connections')}, "
        f"RSS +{f.get('rss_growth_mb')} MB"
        for f in facts
    )


def _t4_summary(facts: list[dict[str, Any]]) -> str:
    """Per message: the named cases refused, fetches, what reached the database."""
    return "; ".join(
        f"{f.get('message')}: {f.get('refused')} of {f.get('cases')} wrapping and policy cases "
        f"refused at {f.get('endpoint')}, fetches {f.get('fetches')}, tampered values stored "
        f"{f.get('tampered_in_database')} (xmlsec1 asked {f.get('xmlsec1_asked')}, valid to it "
        f"but refused by policy {f.get('xmlsec1_valid_we_refuse')})"
        for f in facts
        if "cases" in f
    )


def _t8_summary(facts: list[dict[str, Any]]) -> str:
    """The flood: what was refused, and the other tenants' p95 with and without it."""
    return "; ".join(
        f"one tenant at 3x {f.get('limit_per_second')}/s for {f.get('flood_seconds'):g} s: "
        f"{f.get('flood_429')} of {f.get('flood_sent')} refused 429; the others refused "
        f"{f.get('others_refused')}, p95 {f.get('others_p95_ms_without_flood')} ms without, "
        f"{f.get('others_p95_ms_with_flood')} ms with it (x{f.get('p95_ratio')}, "
        f"bound x{f.get('p95_ratio_bound')})"
        for f in facts
        if "flood_sent" in f
    )


def _t9_summary(facts: list[dict[str, Any]]) -> str:
    """Over which runs the leak scan looked, how much, and what it found."""
    return "; ".join(
        f"over {f.get('over')} ({f.get('declarations', 0):,} declarations): "
        f"{f.get('buyers', 0):,} buyer id numbers and {f.get('phones', 0):,} phones sought in "
        f"{f.get('megabytes_scanned')} MB of {f.get('places')} places (Redis, database rows "
        f"and files, logs, AOF, exports, port payloads): {f.get('leaks')} found in plaintext"
        for f in facts
    )


SUMMARIES = {
    "T1": _t1_summary,
    "T3": _t3_summary,
    "T4": _t4_summary,
    "T5": _t5_summary,
    "T8": _t8_summary,
    "T9": _t9_summary,
}


def table(report: dict[str, Any]) -> str:
    """The README's reliability table, from a report."""
    lines = [
        f"Last run: commit `{report.get('commit')}`, "
        f"{report['machine']['cores']} cores, {report['generated_at']}, "
        f"{report['wall_seconds']:.0f} s"
        + (
            (" (`make prove POSTGRES=1`)" if report.get("postgres") else " (`make prove`)")
            if report.get("prove")
            else " (the short versions of `make test`)"
        )
        + ".",
        "",
        "| row | what | tests passed / run | figures | verdict |",
        "|---|---|---|---|---|",
    ]
    for rid, row in report["rows"].items():
        counts = row["outcomes"]
        run = sum(v for k, v in counts.items() if k in ("passed", "failed"))
        summary = SUMMARIES.get(rid)
        figures = summary(row["facts"]) if summary else ""
        verdict = row["verdict"]
        lines.append(
            f"| {rid} | {row['title']} | {counts.get('passed', 0)} / {run}"
            + (f" ({counts['skipped']} skipped)" if counts.get("skipped") else "")
            + f" | {figures} | **{verdict}** |"
        )
    return "\n".join(lines)


def rewrite_readme(report_path: Path = REPORT, readme: Path = README) -> None:
    report = json.loads(report_path.read_text())
    text = readme.read_text()
    if START not in text or END not in text:
        raise SystemExit(f"{readme} has no {START} ... {END} section")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    readme.write_text(f"{head}{START}\n{table(report)}\n{END}{tail}")


def main(argv: list[str]) -> int:
    if len(argv) >= 1 and argv[0] == "readme":
        rewrite_readme(Path(argv[1]) if len(argv) > 1 else REPORT)
        return 0
    if argv == ["files"]:
        print(" ".join(f for row in MATRIX for f in row.files))
        return 0
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
