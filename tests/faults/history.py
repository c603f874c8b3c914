"""The history checker of the chaos runs (issue 9, RELIABILITY.md T1): per (authority,
business key), what the gateway sent and what the authority applied, and the invariants
of the whole run.

Business keys: a document's guid at customs and at inspection (one CEB message carries
several; its dispatch carries them all), a consignment's logistics number at the port, for
the manifest and for the release. For each key:

* lost: the gateway accepted it and routed it there, and the authority never applied it;
* unexpected: the authority applied a key no accepted declaration has;
* applied twice: the authority applied it more than once;
* resent: the gateway sent it more than once (a fault hit its dispatch: at-least-once);
* recovered: resent, and applied exactly once in the end.

Invariants: at most one release and one joint inspection per consignment, only transitions
the clearance state machine allows (each status event follows from the previous one), and
the audit hash chain verifies (`gateway audit verify`).

What the authorities applied comes from the sandbox's own records; what the gateway sent,
from its database (read through SQL, like the leak scan).
"""

from __future__ import annotations

import subprocess
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import create_engine, text

from gateway.domain.clearance import IllegalTransition, check_transition
from gateway.domain.statuses import DeclarationStatus
from tests.e2e.stack import PROJECT_ROOT
from tests.faults.harness import FaultStack
from tests.faults.leak import database_url

COUNTS = ("keys", "lost", "unexpected", "applied_twice", "resent", "recovered")
AUTHORITIES = ("customs", "inspection", "port manifest", "port release")


@dataclass
class History:
    """Per authority, the counts over its keys; the invariants' violations, by name."""

    by_authority: dict[str, Counter[str]] = field(default_factory=dict)
    examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    violations: dict[str, list[Any]] = field(default_factory=lambda: defaultdict(list))
    inspected: int = 0  # consignments that had their (one) joint inspection

    def count(self, authority: str, what: str, key: str) -> None:
        self.by_authority.setdefault(authority, Counter())[what] += 1
        if what not in ("keys", "resent", "recovered") and len(self.examples[what]) < 5:
            self.examples[what].append(f"{authority}: {key}")

    def total(self, what: str) -> int:
        return sum(c[what] for c in self.by_authority.values())

    def report(self) -> dict[str, Any]:
        return {
            "per_authority": {
                a: {k: int(c[k]) for k in COUNTS} for a, c in sorted(self.by_authority.items())
            },
            "totals": {k: self.total(k) for k in COUNTS if k != "keys"},
            "examples": dict(self.examples),
            "joint_inspections": self.inspected,
            "invariant_violations": {k: v[:5] for k, v in self.violations.items() if v},
        }


def _rows(url: str, sql: str) -> list[dict[str, Any]]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(text(sql))]
    finally:
        engine.dispose()


def _tally(
    history: History,
    authority: str,
    expected: set[str],
    applied: Counter[str],
    sends: dict[str, int],
) -> None:
    for key in sorted(expected | set(applied)):
        n = applied.get(key, 0)
        if key in expected:
            history.count(authority, "keys", key)
            if n == 0:
                history.count(authority, "lost", key)
        else:
            history.count(authority, "unexpected", key)
        if n > 1:
            history.count(authority, "applied_twice", key)
        if sends.get(key, 0) > 1:
            history.count(authority, "resent", key)
            if n == 1:
                history.count(authority, "recovered", key)


def _times_applied(codes: list[str]) -> int:
    """A document's codes at customs or inspection: each code once per application."""
    return max(Counter(codes).values()) if codes else 0


def check_history(
    stack: FaultStack, accepted: dict[str, str], bodies: dict[str, dict[str, Any]],
    records: dict[str, Any],
) -> History:  # fmt: skip
    """``accepted``: declaration id -> document guid; ``bodies``: the gateway's timelines
    (GET /api/v1/declarations/{id}); ``records``: the sandbox's GET /records."""
    url = database_url(stack)
    sql = "SELECT id, message_id, doc_guid, logistics_no, status FROM declarations"
    decls = {r["id"]: r for r in _rows(url, sql)}
    dispatches = _rows(
        url, "SELECT authority, kind, attempts, message_id, declaration_id FROM dispatches"
    )
    docs_of: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in decls.values():
        docs_of[d["message_id"]].append(d)
    ours = {d: decls[d] for d in accepted if d in decls}
    history = History()

    # What the gateway sent: attempts per business key (a message's dispatch, for its docs).
    sends: dict[str, Counter[str]] = {a: Counter() for a in AUTHORITIES}
    for row in dispatches:
        name = {"declaration": row["authority"], "manifest": "port manifest",
                "release": "port release"}.get(row["kind"], row["kind"])  # fmt: skip
        if name not in sends:
            continue
        covered = (
            [decls[row["declaration_id"]]]
            if row["declaration_id"] in decls
            else docs_of.get(row["message_id"], [])
        )
        for doc in covered:
            key = doc["doc_guid"] if name in ("customs", "inspection") else doc["logistics_no"]
            sends[name][key] = max(sends[name][key], int(row["attempts"] or 0))

    for name in ("customs", "inspection"):
        book = records[name]
        expected = {ours[d]["doc_guid"] for d in ours if name in bodies[d].get("routes", [])}
        applied = Counter({g: _times_applied(c) for g, c in book["documents"].items()})
        _tally(history, name, expected, applied, sends[name])
    port = records["port"]
    manifested = {ours[d]["logistics_no"] for d in ours}
    _tally(history, "port manifest", manifested, Counter(port["manifests"]),
           sends["port manifest"])  # fmt: skip
    released = {
        ours[d]["logistics_no"] for d in ours if ours[d]["status"] in ("released", "closed")
    }
    _tally(history, "port release", released, Counter(port["releases"]), sends["port release"])

    _invariants(history, url, bodies)
    _audit_chain(history, stack)
    return history


def _invariants(history: History, url: str, bodies: dict[str, dict[str, Any]]) -> None:
    """≤1 release and ≤1 joint inspection per consignment; only allowed transitions."""
    joint = _rows(
        url,
        "SELECT d.logistics_no AS consignment, COUNT(*) AS n FROM joint_inspections j "
        "JOIN declarations d ON d.id = j.declaration_id GROUP BY d.logistics_no",
    )
    history.violations["joint_inspections_per_consignment"] += [
        (r["consignment"], r["n"]) for r in joint if r["n"] > 1
    ]
    check_timelines(history, bodies)


def check_timelines(history: History, bodies: dict[str, dict[str, Any]]) -> None:
    """Each timeline: one release, one joint inspection at most, and status changes that
    chain (each starts where the previous ended, from ``accepted``) through transitions the
    clearance state machine allows, ending at the declaration's status (_check_chain)."""
    for did, body in bodies.items():
        events = body.get("events", [])
        kinds = Counter(e["kind"] for e in events)
        if kinds["release_queued"] > 1 or kinds["release_sent"] > 1:
            history.violations["releases_per_consignment"].append((did, dict(kinds)))
        opened = sum(1 for e in events if "joint inspection opened" in (e.get("info") or ""))
        history.inspected += opened > 0
        if opened > 1:
            history.violations["joint_inspections_opened"].append((did, opened))
        _check_chain(history, did, body, events)


def _check_chain(
    history: History, did: str, body: dict[str, Any], events: list[dict[str, Any]]
) -> None:
    """Walk the ``status`` events ("a -> b") from ``accepted``. A status event that does not
    start where the last one ended follows a change made without one (a first send submits,
    a gate-out closes): that change must be allowed too, and some event since must have
    carried its status. Events carry the status of their moment, which within one
    transaction may be the one before or after its change, so only the evidence counts."""
    current = DeclarationStatus.ACCEPTED
    seen: set[str] = set()
    for e in events:
        if e["kind"] != "status":
            if e.get("status"):
                seen.add(e["status"])
            continue
        before, _, after = (e.get("info") or "").partition(" -> ")
        try:
            old, new = DeclarationStatus(before), DeclarationStatus(after)
            if old != current:
                if old.value not in seen:
                    raise IllegalTransition(current, old)  # a change nothing recorded
                check_transition(current, old)
            check_transition(old, new)
        except (ValueError, IllegalTransition) as exc:
            history.violations["transitions"].append((did, e.get("info"), str(exc)))
            return
        current, seen = new, set()
    final = body.get("status")
    if not final or final == current.value:
        return
    try:
        if final not in seen:
            raise IllegalTransition(current, DeclarationStatus(final))
        check_transition(current, DeclarationStatus(final))
    except (ValueError, IllegalTransition) as exc:
        history.violations["transitions"].append((did, f"ends {final}", str(exc)))


def _audit_chain(history: History, stack: FaultStack) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "audit", "verify"],
        cwd=PROJECT_ROOT,
        env=stack.env(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0 or "audit chain OK" not in done.stdout:
        history.violations["audit_chain"].append((done.stdout + done.stderr)[-500:])
