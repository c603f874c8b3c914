"""The sandbox customs authority: verify, validate, check, match, tax, select, then answer.

It takes a message at once (deduplicated on the DXP CopMsgId, so a retried delivery never
produces a second set of receipts) and works on it in the background: a bad signature is
answered 100 "验签失败", a format error CEB900, a broken rule or a failed three-document
match 100 with a Chinese and English reason. An inventory list that passes gets its preNo
(2), its invtNo (120), a CEB816 tax bill (imports), and a channel: released (800) or
inspected (500) and then released (800) or held (501).
"""

from __future__ import annotations

import logging
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from lxml import etree

from adapters.dxp import Envelope
from gateway.domain.errors import GatewayError
from gateway.domain.rules import DocumentView, check_document
from gateway.xml.parsing import ParseLimits
from gateway.xml.validation import detect
from sandbox.intake import MessageBook, check_message, documents_of
from sandbox.matching import (
    INVENTORY_DIRECTION,
    PARTNER_TYPES,
    Document,
    PartnerBook,
    Partners,
    check,
    mismatch_reason,
    missing_reason,
)
from sandbox.numbers import china_now, invt_no, pre_no, return_time
from sandbox.outbox import Outbox
from sandbox.receipts import (
    build_reply,
    format_error,
    reply_fields,
    summary_result_message,
    tax_bill_message,
)
from sandbox.registry import SenderRegistry
from sandbox.risk import Risk
from sandbox.scheduler import Scheduler
from sandbox.tax import tax_bill

log = logging.getLogger(__name__)

INFO = {
    "2": "新增申报成功 / declared, e-port accepted",
    "120": "逻辑校验通过 / stored, logic check passed",
    "500": "查验 / selected for inspection",
    "800": "放行 / released",
    "501": "扣留 / held after inspection",
}


@dataclass(frozen=True)
class Step:
    """One receipt of a plan: its code, when (seconds from now), and its reason."""

    code: str
    delay: float
    info: str = ""


def receipt_fields(
    reply_type: str, head: dict[str, str], numbers: dict[str, str], step: Step
) -> dict[str, str]:
    """The fields of a reply: the document's, its numbers (invtNo only from 120 on, unless
    the reply requires it), the status, and when it is issued."""
    fields = {**head, "preNo": numbers.get("preNo", "")}
    needs_invt = any(f.name == "invtNo" and f.required for f in reply_fields(reply_type))
    if needs_invt or step.code not in ("2", "100"):
        fields["invtNo"] = numbers.get("invtNo", "")
    fields["returnStatus"] = step.code
    fields["returnTime"] = return_time(china_now() + timedelta(seconds=step.delay))
    fields["returnInfo"] = (step.info or INFO.get(step.code, step.code))[:1000]
    return fields


class SandboxCustoms:
    """Customs, as the gateway sees it over HTTP."""

    authority = "customs"

    def __init__(
        self,
        registry: SenderRegistry,
        outbox: Outbox,
        risk: Risk,
        scheduler: Scheduler,
        delays: list[float],
        limits: ParseLimits | None = None,
        workers: int = 8,
    ) -> None:
        self.registry, self.outbox, self.risk, self.scheduler = registry, outbox, risk, scheduler
        self.delays = ([*delays, 0.0, 0.0, 0.0])[:3]
        self.limits = limits or ParseLimits()
        self.records = MessageBook()
        self.book = PartnerBook()
        self.tax_bills: dict[str, dict[str, str]] = {}
        self.export_lists: dict[str, tuple[str, list[tuple[str, str]]]] = {}
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="customs")

    def receive(self, env: Envelope) -> str:
        """Take one message; 'accepted' or 'duplicate' (receipts follow later)."""
        if not self.records.register(env.cop_msg_id, env.msg_type):
            return "duplicate"
        self._pool.submit(self._process_safely, env)
        return "accepted"

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def snapshot(self) -> dict[str, Any]:
        with self.records.lock:
            bills = dict(self.tax_bills)
        return {
            **self.records.snapshot(),
            "tax_bills": bills,
            "waiting_for_partners": self.book.waiting(),
            "receipts": self.outbox.snapshot(),
        }

    # ------------------------------------------------------------------ processing

    def _process_safely(self, env: Envelope) -> None:
        try:
            self._process(env)
        except Exception:  # a bug must not kill the worker; the gateway will poll
            log.exception("customs failed to process %s", env.cop_msg_id)

    def _process(self, env: Envelope) -> None:
        checked = check_message(env, self.registry, self.limits)
        if checked.problem == "signature" and checked.root is not None:
            self._reject_unverified(env, checked.root, checked.info)
            return
        if checked.problem is not None or checked.spec is None or checked.root is None:
            self._format_error(env, checked.info)
            return
        spec = checked.spec
        if spec.kind != "declaration" or spec.reply is None:
            self._format_error(env, f"报文类型错误 / {spec.type} is not declared to customs")
            return
        for doc in documents_of(checked.root, spec):
            self._declaration(env.sender_id, spec.reply, doc)

    def _declaration(self, to: str, reply: str, doc: Document) -> None:
        numbers = {"preNo": pre_no(china_now())}
        if doc.type in INVENTORY_DIRECTION:
            numbers["invtNo"] = invt_no(
                doc.head.get("customsCode", "0000"), china_now(), doc.head.get("ieFlag", "I")
            )
        d0, d1, _ = self.delays
        broken = check_document(DocumentView(doc.type, doc.head, doc.lines))
        if broken:
            zh = "；".join(v.message_zh for v in broken[:5])
            en = "; ".join(v.message for v in broken[:5])
            reason = f"逻辑校验失败：{zh} / logic check failed: {en}"
            self._send(to, reply, doc, numbers, [Step("2", d0), Step("100", d0 + d1, reason)])
            return
        if doc.type in INVENTORY_DIRECTION:
            if doc.type == "CEB603":  # kept for the summary results (CEB792) of the month
                with self.records.lock:
                    self.export_lists[numbers["invtNo"]] = (
                        doc.head.get("logisticsNo", ""),
                        [(line.get("gnum", "1"), line.get("gcode", "")) for line in doc.lines],
                    )
            self._inventory(to, reply, doc, numbers)
            return
        if doc.type in PARTNER_TYPES:
            self.book.add(doc)
        self._send(to, reply, doc, numbers, [Step("2", d0), Step("120", d0 + d1)])
        if doc.type == "CEB701":
            self._summary_result(to, doc, d0 + d1 + d1)

    def _summary_result(self, to: str, doc: Document, delay: float) -> None:
        """After accepting a summary application, customs answers with its result (CEB792)."""
        now = china_now()
        customs = doc.head.get("customsCode", "0000")
        sum_no = f"{customs}{now:%Y}S{uuid.uuid4().int % 10**9:09d}"
        entry_id = f"{customs}{now:%Y}{uuid.uuid4().int % 10**10:010d}"
        with self.records.lock:
            known = {
                line.get("invtNo", ""): self.export_lists.get(line.get("invtNo", ""))
                for line in doc.lines
                if line.get("invtNo")
            }
        goods = [(n, *k[0:1], gnum, gcode) for n, k in known.items() if k for gnum, gcode in k[1]]
        message = summary_result_message(
            doc.head, goods, sum_no, entry_id, return_time(now + timedelta(seconds=delay))
        )
        self.outbox.schedule(message, delay, to, "CEB792")

    def _inventory(self, to: str, reply: str, doc: Document, numbers: dict[str, str]) -> None:
        config = self.risk.config
        mode = config.match_mode
        if mode == "off":
            self._decide(to, reply, doc, numbers, None, True)
            return
        if mode == "present":
            self._decide(to, reply, doc, numbers, self.book.find(doc), True)
            return
        token = f"{doc.head.get('guid', '')}/{numbers['preNo']}"

        def complete(partners: Partners) -> None:
            self._decide(to, reply, doc, numbers, partners, False)

        if not self.book.wait(token, doc, complete):
            self._decide(to, reply, doc, numbers, self.book.find(doc), True)
            return
        self._send(to, reply, doc, numbers, [Step("2", self.delays[0])])

        def expire() -> None:
            partners = self.book.expire(token)
            if partners is not None:
                self._decide(to, reply, doc, numbers, partners, False)

        self.scheduler.call_later(config.match_timeout, expire)

    def _decide(
        self,
        to: str,
        reply: str,
        doc: Document,
        numbers: dict[str, str],
        partners: Partners | None,
        with_two: bool,
    ) -> None:
        """After matching: reject, or accept, bill and select a channel."""
        try:
            self._decide_unsafe(to, reply, doc, numbers, partners, with_two)
        except Exception:
            log.exception("customs failed to decide on %s", doc.head.get("guid"))

    def _decide_unsafe(
        self,
        to: str,
        reply: str,
        doc: Document,
        numbers: dict[str, str],
        partners: Partners | None,
        with_two: bool,
    ) -> None:
        d0, d1, d2 = self.delays
        start = d0 if with_two else 0.0
        steps = [Step("2", d0)] if with_two else []
        reason = ""
        if partners is not None:
            missing = partners.missing() if self.risk.config.match_mode == "strict" else []
            if missing:
                reason = missing_reason(doc.head, missing)
            elif problems := check(doc, partners):
                reason = mismatch_reason(problems)
        if reason:
            self._send(to, reply, doc, numbers, [*steps, Step("100", start + d1, reason)])
            return
        accepted = start + d1
        steps.append(Step("120", accepted))
        codes = [doc.head.get(k, "") for k in ("agentCode", "ebpCode", "ebcCode")]
        selected, tier = self.risk.customs_selects(codes)
        if selected:
            steps.append(Step("500", accepted + d2, f"查验 / selected for inspection ({tier})"))
            held = self.risk.holds()
            steps.append(
                Step("501", accepted + 2 * d2)
                if held
                else Step("800", accepted + 2 * d2, "查验放行 / released after inspection")
            )
        else:
            steps.append(Step("800", accepted + d2))
        self._send(to, reply, doc, numbers, steps)
        if doc.type == "CEB621":
            self._tax_bill(to, doc, numbers["invtNo"], accepted)

    def _tax_bill(self, to: str, doc: Document, number: str, delay: float) -> None:
        bill = tax_bill(number, doc.lines)
        when = return_time(china_now() + timedelta(seconds=delay))
        with self.records.lock:
            self.tax_bills[doc.head.get("guid", "")] = {
                "taxNo": bill.tax_no,
                "invtNo": number,
                "valueAddedTax": str(bill.value_added_tax),
                "consumptionTax": str(bill.consumption_tax),
                "customsTax": str(bill.customs_tax),
            }
        self.outbox.schedule(tax_bill_message(bill, doc.head, when), delay, to, "CEB816")

    # ------------------------------------------------------------------ answers

    def _send(
        self, to: str, reply: str, doc: Document, numbers: dict[str, str], steps: list[Step]
    ) -> None:
        guid = doc.head.get("guid", "")
        messages = []
        for step in steps:
            self.records.note(guid, step.code)
            fields = receipt_fields(reply, doc.head, numbers, step)
            messages.append((build_reply(reply, fields), step.delay))
        self.outbox.schedule_series(messages, to, reply)

    def _reject_unverified(self, env: Envelope, root: etree._Element, info: str) -> None:
        """Answer 100 for each document of a message whose signature failed (addressed by
        the unverified content: there is nothing else to address it by)."""
        try:
            spec = detect(root)
        except GatewayError:
            spec = None
        if spec is None or spec.reply is None:
            self._format_error(env, info)
            return
        for doc in documents_of(root, spec):
            numbers = {"preNo": pre_no(china_now())}
            step = Step("100", self.delays[0], info)
            self._send(env.sender_id, spec.reply, doc, numbers, [step])

    def _format_error(self, env: Envelope, info: str) -> None:
        self.outbox.schedule(
            format_error(env.cop_msg_id, env.msg_type, info, return_time(china_now())),
            self.delays[0],
            env.sender_id,
            "CEB900",
        )
