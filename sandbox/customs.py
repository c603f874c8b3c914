"""The sandbox customs authority: verify, validate, then answer 2 -> 120 -> 800 later.

It reads only the verified element of a message, refuses a bad signature with receipt 100
("验签失败") and a format error with CEB900, and deduplicates on the DXP CopMsgId so that a
retried delivery never produces a second set of receipts.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field

from lxml import etree

from adapters.dxp import Envelope
from gateway.domain.errors import GatewayError
from gateway.xml.parsing import ParseLimits, parse_xml
from gateway.xml.validation import detect, schema_violations
from sandbox.numbers import china_now, invt_no, pre_no, return_time
from sandbox.receipts import ReceiptSender, format_error, inventory_return
from sandbox.registry import SenderRegistry, policy_claimed
from schemas.registry import CEB_NS
from signing.errors import SignatureError
from signing.xmldsig import verify_enveloped

log = logging.getLogger(__name__)
_Q = f"{{{CEB_NS}}}"
HEAD_COPY = ("guid", "customsCode", "ebpCode", "ebcCode", "agentCode", "copNo")


@dataclass
class CustomsRecords:
    """What the sandbox saw: each CopMsgId once, and every document it answered."""

    messages: dict[str, str] = field(default_factory=dict)  # CopMsgId -> message type
    duplicates: int = 0
    documents: dict[str, list[str]] = field(default_factory=dict)  # doc guid -> codes sent
    lock: threading.Lock = field(default_factory=threading.Lock)


class SandboxCustoms:
    """Customs, as the gateway sees it over HTTP."""

    def __init__(
        self,
        registry: SenderRegistry,
        sender: ReceiptSender,
        delays: list[float],
        limits: ParseLimits | None = None,
    ) -> None:
        self.registry, self.sender = registry, sender
        self.delays = ([*delays, 0.0, 0.0, 0.0])[:3]
        self.limits = limits or ParseLimits()
        self.records = CustomsRecords()

    def receive(self, env: Envelope) -> str:
        """Take one message; returns 'accepted' or 'duplicate' (receipts follow later)."""
        with self.records.lock:
            if env.cop_msg_id in self.records.messages:
                self.records.duplicates += 1
                return "duplicate"
            self.records.messages[env.cop_msg_id] = env.msg_type
        try:
            root = parse_xml(env.data, self.limits)
        except GatewayError as exc:
            self._format_error(env, f"报文解析失败 / not well-formed: {exc.detail}")
            return "accepted"
        trust = self.registry.trust_for(env.sender_id)
        if trust is None:
            self._reject_all(
                env.sender_id,
                root,
                f"验签失败 / sender {env.sender_id} has no registered signing certificate",
            )
            return "accepted"
        try:
            verified = verify_enveloped(root, trust, policy_claimed(root))
        except SignatureError as exc:
            self._reject_all(
                env.sender_id, root, f"验签失败 / signature verification failed: {exc}"
            )
            return "accepted"
        try:
            spec = detect(verified.root)
        except GatewayError as exc:
            self._format_error(env, f"报文类型错误 / unknown message type: {exc.detail}")
            return "accepted"
        violations = schema_violations(verified.root, spec)
        if violations:
            text = "; ".join(f"{v.path}: {v.message}" for v in violations[:20])
            self._format_error(env, f"报文格式错误 / format error: {text}")
            return "accepted"
        self._clear(
            env.sender_id, verified.root, spec.document or "Inventory", spec.head or "InventoryHead"
        )
        return "accepted"

    def _heads(self, root: etree._Element, document: str, head: str) -> list[dict[str, str]]:
        out = []
        for doc in root.iterfind(f"{_Q}{document}"):
            h = doc.find(f"{_Q}{head}")
            if h is not None:
                out.append(
                    {
                        etree.QName(c).localname: (c.text or "").strip()
                        for c in h
                        if isinstance(c.tag, str)
                    }
                )
        return out

    def _base(self, head: dict[str, str]) -> dict[str, str]:
        base = {k: head.get(k, "") for k in HEAD_COPY}
        base["copNo"] = base["copNo"] or head.get("guid", "")[:20]
        return base

    def _clear(self, to: str, root: etree._Element, document: str, head_name: str) -> None:
        now = china_now()
        for head in self._heads(root, document, head_name):
            base = self._base(head)
            base["preNo"] = pre_no(now)
            number = invt_no(head.get("customsCode", "0000"), now, head.get("ieFlag", "I"))
            steps = [
                ("2", "申报成功 / declared, e-port accepted", {}),
                ("120", "逻辑校验通过 / stored, logic check passed", {"invtNo": number}),
                ("800", "放行 / released", {"invtNo": number}),
            ]
            delay = 0.0
            for (code, info, extra), step in zip(steps, self.delays, strict=True):
                delay += step
                fields = {
                    **base,
                    **extra,
                    "returnStatus": code,
                    "returnTime": return_time(china_now()),
                    "returnInfo": info,
                }
                self._send(to, base["guid"], code, fields, delay)

    def _reject_all(self, to: str, root: etree._Element, info: str) -> None:
        now = china_now()
        for head in self._heads(root, "Inventory", "InventoryHead"):
            base = self._base(head)
            base["preNo"] = pre_no(now)
            fields = {
                **base,
                "returnStatus": "100",
                "returnTime": return_time(now),
                "returnInfo": info[:1000],
            }
            self._send(to, base["guid"], "100", fields, self.delays[0])

    def _send(self, to: str, guid: str, code: str, fields: dict[str, str], delay: float) -> None:
        with self.records.lock:
            self.records.documents.setdefault(guid, []).append(code)
        self.sender.schedule(inventory_return(fields), delay, to)

    def _format_error(self, env: Envelope, info: str) -> None:
        self.sender.schedule(
            format_error(env.cop_msg_id, env.msg_type, info, return_time(china_now())),
            self.delays[0],
            env.sender_id,
        )
