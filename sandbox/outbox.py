"""One authority's outgoing messages: signed with its own key, pushed to the gateway when due
(retrying with backoff), and kept in a log the gateway can poll when pushes go missing.

Messages are signed when they are first sent, not when scheduled: what is due together for
one receiver is packed into one message first (sandbox/packing.py), so a busy authority
sends a hundred receipts in one signed message, in the order they fell due.

Receipt-side faults apply here: a dropped receipt is logged but never pushed, a duplicated
one is pushed twice, and out-of-order reverses the times of a document's receipts.
"""

from __future__ import annotations

import bisect
import heapq
import itertools
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from adapters.dxp import Envelope, build_envelope
from adapters.http_client import HttpClient, HttpError
from sandbox.faults import Faults
from sandbox.packing import MAX_ENTRIES, entries, pack, pack_key
from signing.keys import KeyProvider
from signing.policy import SignaturePolicy
from signing.xmldsig import sign_enveloped

log = logging.getLogger(__name__)
MAX_POLL = 500
MAX_TRIES = 12  # then the message is left to the poll endpoint
# Two pushing threads. A tax bill must not overtake the receipt that gives its list a
# number (two times in six in a hand test before this rule; the gateway then had nothing to
# attach it to): a result waits while a status receipt to the same receiver is in flight.
SENDERS = 2


@dataclass
class _Item:
    receiver: str
    msg_type: str
    push: bool  # False: dropped (logged only)
    twice: bool = False  # pushed a second time (the duplicate fault)
    message: etree._Element | None = None  # unsigned, until first sent
    body: bytes | None = None  # the signed envelope, once built (retries send it again)
    tries: int = 0

    def group(self) -> tuple[Any, ...] | None:
        """Fresh items with the same group are packed into one message."""
        if self.message is None:
            return None
        key = pack_key(self.message)
        return None if key is None else (self.receiver, self.msg_type, self.push, self.twice, key)


BUCKET = 0.1  # seconds: what falls due within one bucket leaves receipts first
LATER = ("CEB816", "CEB792")  # results that name a number an earlier receipt gave


@dataclass(order=True)
class _Due:
    """Heap order: by 0.1 s bucket, then status receipts before the results that refer to
    their numbers (a tax bill names the invtNo its list's 120 receipt gave), then time."""

    bucket: int
    rank: int
    at: float
    seq: int
    item: _Item = field(compare=False)


def _due(at: float, seq: int, item: _Item) -> _Due:
    return _Due(int(at / BUCKET), int(item.msg_type in LATER), at, seq, item)


@dataclass
class OutboxStats:
    """Counters for /records: ``produced`` counts messages as scheduled (entries),
    ``delivered`` and the rest count pushes (packed messages)."""

    produced: int = 0
    delivered: int = 0
    refused: int = 0
    dropped: int = 0
    duplicated: int = 0
    failed_attempts: int = 0
    given_up: int = 0
    packed: int = 0  # messages signed and sent, however many entries each carried


class Outbox:
    """Signs, schedules, logs and pushes one authority's messages; thread-safe."""

    def __init__(
        self,
        authority: str,
        url: str,
        sender_id: str,
        key: KeyProvider,
        policy: SignaturePolicy,
        faults: Faults,
        *,
        timeout: float = 5.0,
        retry_base: float = 0.5,
        senders: int = SENDERS,
    ) -> None:
        self.authority, self.url, self.sender_id = authority, url, sender_id
        self.key, self.policy, self.faults = key, policy, faults
        self.retry_base = retry_base
        self.stats = OutboxStats()
        self._heap: list[_Due] = []
        self._order = itertools.count()
        self._cv = threading.Condition()
        self._stopped = False
        self._log_seq = 0
        self._log: dict[str, tuple[list[int], list[bytes]]] = {}  # receiver -> seqs, bodies
        self._receipts_in_flight: dict[str, int] = {}  # receiver -> status receipts being sent
        self._client = HttpClient(2.0, timeout, max_idle=senders)
        self._threads = [
            threading.Thread(target=self._run, name=f"outbox-{authority}-{i}", daemon=True)
            for i in range(senders)
        ]
        for thread in self._threads:
            thread.start()

    # ------------------------------------------------------------------ scheduling

    def envelope(self, message: etree._Element, receiver: str, msg_type: str) -> bytes:
        """Sign ``message`` in place and wrap it in a DXP envelope from this authority."""
        sign_enveloped(message, self.key, self.policy)
        data = etree.tostring(message, xml_declaration=True, encoding="UTF-8")
        cop_msg_id = message.get("guid") or message.get("id") or ""
        return build_envelope(
            Envelope(
                cop_msg_id=cop_msg_id,
                sender_id=self.sender_id,
                receiver_ids=(receiver,),
                msg_type=msg_type,
                data=data,
            )
        )

    def schedule(
        self, message: etree._Element, delay: float, receiver: str, msg_type: str | None = None
    ) -> None:
        """Send one message to ``receiver`` after ``delay`` seconds."""
        self.schedule_series([(message, delay)], receiver, msg_type)

    def schedule_series(
        self,
        messages: Sequence[tuple[etree._Element, float]],
        receiver: str,
        msg_type: str | None = None,
    ) -> None:
        """Send a document's messages at their delays (reversed when out-of-order is on)."""
        config = self.faults.get(self.authority)
        delays = [d + config.receipt_delay for _, d in messages]
        order = list(range(len(messages)))
        if config.out_of_order and len(messages) > 1:
            delays = sorted(delays, reverse=True)
            order.reverse()  # equal delays too: the last message first
        now = time.monotonic()
        due: list[_Due] = []
        for i in order:
            message = messages[i][0]
            kind = msg_type or etree.QName(message).localname[:6]
            push = not self.faults.chance(config.drop_receipts)
            twice = push and self.faults.chance(config.duplicate_receipts)
            item = _Item(receiver, kind, push, twice, message)
            due.append(_due(now + delays[i], next(self._order), item))
        with self._cv:
            self.stats.produced += len(messages)
            self.stats.dropped += sum(1 for d in due if not d.item.push)
            self.stats.duplicated += sum(1 for d in due if d.item.twice)
            for d in due:
                heapq.heappush(self._heap, d)
            self._cv.notify()

    # ------------------------------------------------------------------ poll log

    def after(self, receiver: str, after: int, limit: int = MAX_POLL) -> list[tuple[int, bytes]]:
        """Messages for ``receiver`` logged after sequence number ``after``, oldest first."""
        with self._cv:
            seqs, bodies = self._log.get(receiver, ([], []))
            start = bisect.bisect_right(seqs, after)
            return list(
                zip(seqs[start : start + limit], bodies[start : start + limit], strict=True)
            )

    def _append_log(self, receiver: str, body: bytes) -> None:
        with self._cv:
            self._log_seq += 1
            seqs, bodies = self._log.setdefault(receiver, ([], []))
            seqs.append(self._log_seq)
            bodies.append(body)

    # ------------------------------------------------------------------ delivery

    def pending(self) -> int:
        with self._cv:
            return len(self._heap)

    def snapshot(self) -> dict[str, Any]:
        with self._cv:
            return {**self.stats.__dict__, "pending": len(self._heap), "logged": self._log_seq}

    def stop(self) -> None:
        with self._cv:
            self._stopped = True
            self._cv.notify_all()
        for thread in self._threads:
            thread.join(10)
        self._client.close()

    def _take(self) -> list[_Item] | None:
        """Wait for what is due and take it: a retry alone, or a run of fresh items that
        pack into one message (up to MAX_ENTRIES entries; the run stops at the first item
        that does not pack with it, so nothing overtakes but receipts passing results that
        must wait); None once stopped."""
        with self._cv:
            while True:
                if self._stopped:
                    return None
                waiting = self._set_aside_waiting_results()
                ready = bool(self._heap) and self._heap[0].at <= time.monotonic()
                if ready:
                    taken = self._take_run()
                for due in waiting:  # back in place, for when their receipts are in
                    heapq.heappush(self._heap, due)
                if ready:
                    return taken
                wait = (self._heap[0].at - time.monotonic()) if self._heap else None
                self._cv.wait(0.05 if waiting or (wait is not None and wait <= 0) else wait)

    def _set_aside_waiting_results(self) -> list[_Due]:
        """Pop the due results at the head whose receipts are still being sent."""
        aside = []
        now = time.monotonic()
        while self._heap and self._heap[0].at <= now:
            head = self._heap[0].item
            if head.msg_type in LATER and self._receipts_in_flight.get(head.receiver):
                aside.append(heapq.heappop(self._heap))
            else:
                break
        return aside

    def _take_run(self) -> list[_Item]:
        first = heapq.heappop(self._heap).item
        if first.msg_type not in LATER:
            n = self._receipts_in_flight.get(first.receiver, 0)
            self._receipts_in_flight[first.receiver] = n + 1
        group = first.group()
        if group is None:
            return [first]
        taken, count = [first], entries(first.message)  # type: ignore[arg-type]
        now = time.monotonic()
        while self._heap and self._heap[0].at <= now and count < MAX_ENTRIES:
            head = self._heap[0].item
            n = entries(head.message) if head.message is not None else MAX_ENTRIES
            if head.group() != group or count + n > MAX_ENTRIES:
                break
            heapq.heappop(self._heap)
            taken.append(head)
            count += n
        return taken

    def _sent(self, item: _Item) -> None:
        """A status receipt's push is over (done or to retry): results may follow."""
        if item.msg_type in LATER:
            return
        with self._cv:
            self._receipts_in_flight[item.receiver] -= 1
            self._cv.notify_all()

    def _build(self, items: list[_Item]) -> _Item:
        """One item for ``items``: packed, signed and logged (the log is what polls see)."""
        first = items[0]
        if first.body is not None:
            return first
        assert first.message is not None
        message = pack([i.message for i in items if i.message is not None])
        first.body = self.envelope(message, first.receiver, first.msg_type)
        first.message = None
        self._append_log(first.receiver, first.body)
        with self._cv:
            self.stats.packed += 1
        return first

    def _run(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            try:
                self._push(taken)
            finally:
                self._sent(taken[0])

    def _push(self, taken: list[_Item]) -> None:
        try:
            item = self._build(taken)
        except Exception:  # a message that cannot be signed is a sandbox bug: say so
            log.exception("%s could not sign a message; it is not sent", self.authority)
            return
        if not item.push:
            return
        if not self._post(item.body or b""):
            self._retry_later(item)
        elif item.twice:
            item.twice = False
            self._post(item.body or b"")

    def _retry_later(self, item: _Item) -> None:
        item.tries += 1
        with self._cv:
            self.stats.failed_attempts += 1
            if item.tries >= MAX_TRIES:
                self.stats.given_up += 1
                log.error("%s gave up pushing a message; it stays pollable", self.authority)
                return
            backoff = min(30.0, self.retry_base * 2 ** min(item.tries - 1, 6))
            heapq.heappush(self._heap, _due(time.monotonic() + backoff, next(self._order), item))
            self._cv.notify()

    def _post(self, body: bytes) -> bool:
        """True when done with (delivered or refused for good), False to retry."""
        try:
            resp = self._client.post(self.url, body, {"Content-Type": "application/xml"})
        except HttpError as exc:
            log.warning("%s: delivery to %s failed: %s", self.authority, self.url, exc)
            return False
        if resp.status >= 500 or resp.status == 429:
            log.warning("%s: gateway answered %s; will retry", self.authority, resp.status)
            return False
        with self._cv:
            if resp.status >= 400:
                self.stats.refused += 1
                log.error(
                    "%s: gateway refused a message (%s): %s",
                    self.authority,
                    resp.status,
                    resp.text[:300],
                )
            else:
                self.stats.delivered += 1
        return True
