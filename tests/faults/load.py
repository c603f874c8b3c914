"""The load generator (threads submitting multi-document CEB621 messages, with resubmits under
the same Idempotency-Key), the bounded wait for final statuses, and the audit that counts
from the sandbox's own records and the gateway's timelines."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateway.examples import fresh_ceb621
from tests.faults.harness import FINAL, FaultStack
from tests.faults.history import check_history

XML = {"Content-Type": "application/xml"}
RETRYABLE = {429, 500, 502, 503, 504}


@dataclass
class Submission:
    key: str
    body: bytes
    ids: list[str] = field(default_factory=list)
    guids: list[str] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)  # every HTTP status seen, in order


@dataclass
class Load:
    """Submits ``messages`` messages of ``docs`` documents from ``threads`` threads; each is
    retried with the same Idempotency-Key until it gets an answer, and ``resubmit`` of them
    are sent again afterwards, which must replay the same declarations."""

    stack: FaultStack
    messages: int
    docs: int
    threads: int = 4
    resubmit: float = 0.1
    twins: float = 0.02  # share sent twice at the same moment: both must get one answer
    deadline_seconds: float = 150.0
    pause: float = 0.0  # seconds between one thread's submissions (spreads the load out)
    subs: list[Submission] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    status_counts: Counter[int | str] = field(default_factory=Counter)
    replays: int = 0
    twin_pairs: int = 0
    # (monotonic time answered, seconds the answering attempt took) of every accepted
    # submission: the soak compares the service time at the start and the end (retries
    # while a fault lasts are the fault's, not the service's).
    latencies: list[tuple[float, float]] = field(default_factory=list)
    unavailable: list[float] = field(default_factory=list)  # monotonic times of 503s
    done: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.subs = [
            Submission(f"fault-{uuid.uuid4().hex}", fresh_ceb621(self.docs))
            for _ in range(self.messages)
        ]

    # ------------------------------------------------------------------ submitting

    def _post(self, client: httpx.Client, sub: Submission) -> dict[str, Any] | None:
        """One submission until it is answered (bounded); the JSON of a 200/202."""
        deadline = time.monotonic() + self.deadline_seconds
        while time.monotonic() < deadline:
            started = time.monotonic()
            try:
                resp = client.post(
                    "/api/v1/declarations",
                    content=sub.body,
                    headers={**XML, "Idempotency-Key": sub.key},
                )
            except httpx.HTTPError as exc:
                with self._lock:
                    self.status_counts[type(exc).__name__] += 1
                time.sleep(0.2)
                continue
            with self._lock:
                self.status_counts[resp.status_code] += 1
                if resp.status_code == 503:
                    self.unavailable.append(time.monotonic())
            sub.answers.append(resp.status_code)
            if resp.status_code in (200, 202):
                answered = time.monotonic()
                with self._lock:
                    self.latencies.append((answered, answered - started))
                return dict(resp.json())
            if resp.status_code in RETRYABLE:
                time.sleep(0.2)
                continue
            with self._lock:
                self.problems.append(f"{sub.key}: {resp.status_code} {resp.text[:300]}")
            return None
        with self._lock:
            self.problems.append(f"{sub.key}: no answer within {self.deadline_seconds} s")
        return None

    def _twins(self, client: httpx.Client, sub: Submission) -> dict[str, Any] | None:
        """The same submission from two connections at once: one declaration set, both
        answers naming it (one made it, the other replayed it)."""
        barrier = threading.Barrier(2)
        answers: list[dict[str, Any] | None] = [None, None]

        def send(i: int, c: httpx.Client) -> None:
            barrier.wait(10)
            answers[i] = self._post(c, sub)

        headers = {"Authorization": f"Bearer {self.stack.api_key}"}
        with httpx.Client(base_url=self.stack.base, headers=headers, timeout=15) as other:
            twin = threading.Thread(target=send, args=(1, other))
            twin.start()
            send(0, client)
            twin.join()
        first, second = answers
        if first is None or second is None:
            return None
        with self._lock:
            self.twin_pairs += 1
        ids = [[d["id"] for d in a["declarations"]] for a in (first, second)]
        if ids[0] != ids[1]:
            with self._lock:
                self.problems.append(f"{sub.key}: concurrent twins got {ids[0]} and {ids[1]}")
        return first

    def _one(self, client: httpx.Client, sub: Submission, rng: random.Random) -> None:
        twice = rng.random() < self.twins
        body = self._twins(client, sub) if twice else self._post(client, sub)
        if body is None:
            return
        sub.ids = [d["id"] for d in body["declarations"]]
        sub.guids = [d["guid"] for d in body["declarations"]]
        if len(sub.ids) != self.docs:
            self.problems.append(f"{sub.key}: {len(sub.ids)} declarations for {self.docs} docs")
        if rng.random() < self.resubmit:
            again = self._post(client, sub)
            if again is None:
                return
            with self._lock:
                self.replays += 1
            if not again.get("replayed") or [d["id"] for d in again["declarations"]] != sub.ids:
                self.problems.append(f"{sub.key}: a replay did not give the original answer")

    def _thread(self, part: list[Submission], seed: int) -> None:
        rng = random.Random(seed)
        headers = {"Authorization": f"Bearer {self.stack.api_key}"}
        with httpx.Client(base_url=self.stack.base, headers=headers, timeout=15) as client:
            for sub in part:
                self._one(client, sub, rng)
                if self.pause:
                    time.sleep(self.pause)

    def start(self) -> threading.Thread:
        """Run in the background; ``done`` is set when every thread has finished."""

        def part(i: int) -> None:
            try:
                self._thread(self.subs[i :: self.threads], i)
            except Exception as exc:
                with self._lock:
                    self.problems.append(f"load thread crashed: {exc!r}")

        def run() -> None:
            # Daemon threads, not an executor's: a test that fails while the load still
            # runs must not keep the interpreter waiting for every submission's deadline.
            threads = [
                threading.Thread(target=part, args=(i,), name=f"load-{i}", daemon=True)
                for i in range(self.threads)
            ]
            try:
                for th in threads:
                    th.start()
                for th in threads:
                    th.join()
            finally:
                self.done.set()

        t = threading.Thread(target=run, name="load", daemon=True)
        t.start()
        return t

    def submitted(self) -> int:
        return sum(1 for s in self.subs if s.answers)

    @property
    def accepted(self) -> dict[str, str]:
        """Declaration id -> document guid, for every accepted document."""
        return {i: g for s in self.subs for i, g in zip(s.ids, s.guids, strict=True)}


# ---------------------------------------------------------------------- waiting


def statuses(stack: FaultStack) -> dict[str, dict[str, Any]]:
    """Every declaration the gateway lists for the demo organisation (paged)."""
    out: dict[str, dict[str, Any]] = {}
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    with httpx.Client(base_url=stack.base, headers=headers, timeout=15) as client:
        cursor: str | None = None
        for _ in range(1000):
            params: dict[str, Any] = {"limit": 200}
            if cursor:
                params["cursor"] = cursor
            resp = client.get("/api/v1/declarations", params=params)
            resp.raise_for_status()
            body = resp.json()
            for item in body["items"]:
                out[item["id"]] = item
            cursor = body.get("next_cursor")
            if not cursor:
                break
    return out


def wait_final(
    stack: FaultStack,
    ids: set[str],
    timeout: float,
    tick: Callable[[], None] | None = None,
) -> dict[str, dict[str, Any]]:
    """Poll the list until every id has a final status or ``timeout`` passes; ``tick`` runs
    on every round (the chaos watchdog restarts a launcher that died meanwhile)."""
    deadline = time.monotonic() + timeout
    seen: dict[str, dict[str, Any]] = {}
    while True:
        if tick is not None:
            tick()
        try:
            seen = statuses(stack)
        except httpx.HTTPError:
            seen = seen or {}
        if all(seen.get(i, {}).get("status") in FINAL for i in ids):
            return seen
        if time.monotonic() >= deadline:
            return seen
        time.sleep(0.5)


def timelines(stack: FaultStack, ids: list[str]) -> dict[str, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {stack.api_key}"}
    with httpx.Client(base_url=stack.base, headers=headers, timeout=30) as client:

        def get(i: str) -> tuple[str, dict[str, Any]]:
            resp = client.get(f"/api/v1/declarations/{i}")
            resp.raise_for_status()
            return i, resp.json()

        with ThreadPoolExecutor(6) as pool:
            return dict(pool.map(get, ids))


# ---------------------------------------------------------------------- the audit


@dataclass
class Audit:
    """What the run shows; ``failures`` is empty when the contract held."""

    failures: list[str] = field(default_factory=list)
    facts: dict[str, Any] = field(default_factory=dict)

    def check(self, ok: bool, what: str, examples: Any = None) -> None:
        if not ok:
            self.failures.append(what + (f": {examples}" if examples is not None else ""))


def _repeats(codes: list[str]) -> bool:
    return len(codes) != len(set(codes))


def audit(stack: FaultStack, load: Load, final: dict[str, dict[str, Any]]) -> Audit:
    """Zero lost, zero duplicate effects, exactly one release per released consignment."""
    a = Audit()
    accepted = load.accepted
    a.facts["accepted_declarations"] = len(accepted)
    a.facts["messages"] = len([s for s in load.subs if s.ids])
    a.facts["load_problems"] = load.problems[:10]
    a.facts["http_answers"] = {str(k): v for k, v in load.status_counts.items()}
    a.facts["replays"] = load.replays
    a.facts["concurrent_twins"] = load.twin_pairs
    a.check(not load.problems, "submissions without a proper answer", load.problems[:5])
    a.check(
        len(accepted) == load.messages * load.docs,
        f"accepted {len(accepted)} of {load.messages * load.docs} documents",
    )

    # Lost: every accepted declaration reaches a final status; nothing unexpected appears.
    lost = sorted(i for i in accepted if final.get(i, {}).get("status") not in FINAL)
    a.facts["lost"] = len(lost)
    a.check(
        not lost,
        f"{len(lost)} accepted declaration(s) never reached a final status",
        [(i, final.get(i, {}).get("status")) for i in lost[:5]],
    )
    unexpected = sorted(set(final) - set(accepted))
    a.facts["unexpected"] = len(unexpected)
    a.check(not unexpected, f"{len(unexpected)} declaration(s) nobody accepted", unexpected[:5])
    by_status = Counter(final.get(i, {}).get("status") for i in accepted)
    a.facts["statuses"] = dict(by_status)
    not_closed = [i for i in accepted if final.get(i, {}).get("status") != "closed"]

    # The gateway's own timelines.
    bodies = timelines(stack, sorted(accepted))
    explained_rejections = []
    bad_timeline = []
    dispatch_ids: set[str] = set()
    for i, body in bodies.items():
        events = body["events"]
        kinds = Counter(e["kind"] for e in events)
        receipts = Counter(
            (e["source"], e["code"]) for e in events if e["kind"] == "receipt" and e["code"]
        )
        for e in events:
            info = e.get("info") or ""
            if "dispatch dsp_" in info:
                dispatch_ids.add(info.split("dispatch ", 1)[1].split(")")[0].strip())
        twice = {k: n for k, n in receipts.items() if n > 1}
        if twice:
            bad_timeline.append((i, "receipt applied twice", twice))
        if body["status"] == "closed":
            for kind in ("release_queued", "release_sent", "arrived", "gate_out"):
                if kinds[kind] != 1:
                    bad_timeline.append((i, f"{kind} x{kinds[kind]}", None))
            if receipts[("customs", "800")] != 1:
                bad_timeline.append((i, "customs 800 not exactly once", dict(receipts)))
        elif body["status"] == "rejected":
            reason = [e for e in events if e["kind"] in ("send_failed",) or e["code"] == "100"]
            explained_rejections.append((i, [(e["kind"], e["info"][:200]) for e in reason]))
        if kinds["release_queued"] > 1 or kinds["release_sent"] > 1:
            bad_timeline.append((i, "released twice", dict(kinds)))
    a.facts["rejected"] = explained_rejections[:5]
    a.check(
        not not_closed,
        f"{len(not_closed)} declaration(s) not closed (every document here should clear)",
        [(i, final.get(i, {}).get("status"), r) for i, r in explained_rejections[:3]]
        or not_closed[:5],
    )
    a.check(not bad_timeline, f"{len(bad_timeline)} bad timeline(s)", bad_timeline[:5])

    # The sandbox's own records.
    records = httpx.get(stack.sandbox + "/records", timeout=30).json()
    customs, inspection, port = records["customs"], records["inspection"], records["port"]
    a.facts["sandbox"] = {
        "customs_messages": customs["message_count"],
        "customs_duplicates": customs["duplicates"],
        "inspection_messages": inspection["message_count"],
        "inspection_duplicates": inspection["duplicates"],
        "port_messages": port["message_count"],
        "port_duplicates": port["duplicates"],
        "second_releases": port["second_releases"],
        "customs_outbox": customs["receipts"],
        # Distinct messages the authorities took (each dispatch once, however often sent).
        "dispatches": customs["message_count"]
        + inspection["message_count"]
        + port["message_count"],
    }
    n_messages = a.facts["messages"]
    # One customs (and inspection) message per accepted CEB message, under its dispatch id:
    # a retry resends the same CopMsgId (counted as a duplicate), never a new one.
    a.check(
        customs["message_count"] == n_messages,
        f"customs saw {customs['message_count']} CopMsgIds for {n_messages} messages",
    )
    foreign = sorted(set(customs["messages"]) - dispatch_ids)
    a.check(not foreign, "customs CopMsgIds that are no dispatch of ours", foreign[:5])
    a.check(
        inspection["message_count"] == n_messages,
        f"inspection saw {inspection['message_count']} CopMsgIds for {n_messages} messages",
    )
    guids = set(accepted.values())
    for name, book in (("customs", customs), ("inspection", inspection)):
        missing = sorted(guids - set(book["documents"]))
        a.check(not missing, f"{name} never processed {len(missing)} document(s)", missing[:5])
        twice = {g: c for g, c in book["documents"].items() if g in guids and _repeats(c)}
        a.check(not twice, f"{name} processed {len(twice)} document(s) twice", list(twice)[:3])
    released = {
        body["logistics_no"] for body in bodies.values() if body["status"] in ("closed", "released")
    }
    a.facts["released_consignments"] = len(released)
    not_once = {n: port["releases"].get(n, 0) for n in released if port["releases"].get(n) != 1}
    a.check(not not_once, "consignments not released exactly once", list(not_once.items())[:5])
    a.check(port["second_releases"] == 0, f"{port['second_releases']} second release(s)")
    manifests = {n: port["manifests"].get(n, 0) for n in released}
    bad_manifests = {n: c for n, c in manifests.items() if c != 1}
    a.check(not bad_manifests, "consignments manifested other than once", bad_manifests)

    # The history checker: per (authority, business key), and the run's invariants.
    history = check_history(stack, accepted, bodies, records)
    a.facts["history"] = history.report()
    # Applied twice: at an authority (per business key), or a receipt or release twice in
    # the gateway's own timelines.
    a.facts["applied_twice"] = history.total("applied_twice") + sum(
        1 for _, what, _ in bad_timeline if "twice" in what
    )
    for what in ("lost", "unexpected", "applied_twice"):
        n = history.total(what)
        a.check(not n, f"history: {n} key(s) {what}", history.examples.get(what))
    broken = {k: v[:3] for k, v in history.violations.items() if v}
    a.check(not broken, "history: invariants broken", broken)
    return a
