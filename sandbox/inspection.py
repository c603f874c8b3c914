"""The sandbox inspection & quarantine authority (检验检疫): it receives the inventory lists
whose goods the gateway routes to it, verifies and validates them like customs, and answers
in CEB622 form: 120 accepted, then 800 released, or 500 inspection followed by 800 or 501,
choosing by its own rate."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from adapters.dxp import Envelope
from gateway.domain.errors import GatewayError
from gateway.xml.parsing import ParseLimits
from gateway.xml.validation import detect
from sandbox.customs import Step, receipt_fields
from sandbox.intake import MessageBook, check_message, documents_of
from sandbox.matching import INVENTORY_DIRECTION, Document
from sandbox.numbers import china_now, pre_no, return_time
from sandbox.outbox import Outbox
from sandbox.receipts import build_reply, format_error
from sandbox.registry import SenderRegistry
from sandbox.risk import Risk

log = logging.getLogger(__name__)


class SandboxInspection:
    """Inspection & quarantine, as the gateway sees it over HTTP."""

    authority = "inspection"

    def __init__(
        self,
        registry: SenderRegistry,
        outbox: Outbox,
        risk: Risk,
        delays: list[float],
        limits: ParseLimits | None = None,
        workers: int = 4,
    ) -> None:
        self.registry, self.outbox, self.risk = registry, outbox, risk
        self.delays = ([*delays, 0.0, 0.0])[:2]
        self.limits = limits or ParseLimits()
        self.records = MessageBook()
        self._pool = ThreadPoolExecutor(workers, thread_name_prefix="inspection")

    def receive(self, env: Envelope) -> str:
        """Take one message; 'accepted' or 'duplicate' (receipts follow later)."""
        if not self.records.register(env.cop_msg_id, env.msg_type):
            return "duplicate"
        self._pool.submit(self._process_safely, env)
        return "accepted"

    def stop(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def snapshot(self) -> dict[str, Any]:
        return {**self.records.snapshot(), "receipts": self.outbox.snapshot()}

    def _process_safely(self, env: Envelope) -> None:
        try:
            self._process(env)
        except Exception:
            log.exception("inspection failed to process %s", env.cop_msg_id)

    def _process(self, env: Envelope) -> None:
        checked = check_message(env, self.registry, self.limits)
        spec, root = checked.spec, checked.root
        if checked.problem == "signature" and root is not None:
            try:  # the unverified type: there is nothing else to address the answer by
                spec = detect(root)
            except GatewayError:
                spec = None
            if spec is None or spec.type not in INVENTORY_DIRECTION or spec.reply is None:
                self._format_error(env, checked.info)
                return
            for doc in documents_of(root, spec):
                self._send(
                    env.sender_id, spec.reply, doc, [Step("100", self.delays[0], checked.info)]
                )
            return
        if checked.problem is not None or spec is None or root is None:
            self._format_error(env, checked.info)
            return
        if spec.type not in INVENTORY_DIRECTION or spec.reply is None:
            self._format_error(
                env, f"报文类型错误 / inspection & quarantine does not take {spec.type}"
            )
            return
        first, second = self.delays
        for doc in documents_of(root, spec):
            steps = [Step("120", first, "检验检疫受理 / accepted by inspection & quarantine")]
            if self.risk.ciq_selects():
                steps.append(Step("500", first, "布控查验 / selected for inspection (CIQ)"))
                steps.append(
                    Step("501", first + second, "检疫不合格扣留 / held by inspection & quarantine")
                    if self.risk.holds()
                    else Step("800", first + second, "检验检疫放行 / released after inspection")
                )
            else:
                steps.append(Step("800", first + second, "检验检疫放行 / released"))
            self._send(env.sender_id, spec.reply, doc, steps)

    def _send(self, to: str, reply: str, doc: Document, steps: list[Step]) -> None:
        guid = doc.head.get("guid", "")
        numbers = {"preNo": pre_no(china_now())}
        messages = []
        for step in steps:
            self.records.note(guid, step.code)
            fields = receipt_fields(reply, doc.head, numbers, step)
            fields.pop("invtNo", None)  # the inventory number is customs'; CIQ has none
            if reply == "CEB604":
                fields["invtNo"] = doc.head.get("invtNo") or numbers["preNo"]
            messages.append((build_reply(reply, fields), step.delay))
        self.outbox.schedule_series(messages, to, reply)

    def _format_error(self, env: Envelope, info: str) -> None:
        self.outbox.schedule(
            format_error(env.cop_msg_id, env.msg_type, info, return_time(china_now())),
            self.delays[0],
            env.sender_id,
            "CEB900",
        )
