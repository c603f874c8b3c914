"""What every sandbox authority does first with a message: remember its CopMsgId once, then
parse, verify the sender's signature and validate it, reading only what the signature covers."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from adapters.dxp import Envelope
from gateway.domain.errors import GatewayError
from gateway.xml.parsing import ParseLimits, parse_xml
from gateway.xml.validation import detect, schema_violations
from sandbox.matching import Document
from sandbox.registry import SenderRegistry, policy_claimed
from schemas.registry import MessageSpec
from signing.errors import SignatureError
from signing.xmldsig import verify_enveloped


@dataclass
class MessageBook:
    """Each CopMsgId once (durable for the process), and every code sent per document."""

    messages: dict[str, str] = field(default_factory=dict)  # CopMsgId -> message type
    duplicates: int = 0
    documents: dict[str, list[str]] = field(default_factory=dict)  # doc guid -> codes
    lock: threading.Lock = field(default_factory=threading.Lock)

    def register(self, cop_msg_id: str, msg_type: str) -> bool:
        """True the first time ``cop_msg_id`` is seen; counts a duplicate otherwise."""
        with self.lock:
            if cop_msg_id in self.messages:
                self.duplicates += 1
                return False
            self.messages[cop_msg_id] = msg_type
            return True

    def seen(self, cop_msg_id: str) -> bool:
        with self.lock:
            return cop_msg_id in self.messages

    def count_duplicate(self) -> None:
        with self.lock:
            self.duplicates += 1

    def note(self, guid: str, code: str) -> None:
        with self.lock:
            self.documents.setdefault(guid, []).append(code)

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "messages": dict(self.messages),
                "message_count": len(self.messages),
                "duplicates": self.duplicates,
                "documents": {k: list(v) for k, v in self.documents.items()},
            }


@dataclass(frozen=True)
class Checked:
    """The outcome of reading one message: ``problem`` is None when it is good to process.

    problem "format": answer CEB900; "signature": answer 100 验签失败 for each document."""

    problem: str | None
    info: str = ""
    spec: MessageSpec | None = None
    root: etree._Element | None = None  # the verified element (or, on "signature", as sent)


def check_message(env: Envelope, registry: SenderRegistry, limits: ParseLimits) -> Checked:
    """Parse, verify and validate the payload of ``env``."""
    try:
        root = parse_xml(env.data, limits)
    except GatewayError as exc:
        return Checked("format", f"报文解析失败 / not well-formed: {exc.detail}")
    trust = registry.trust_for(env.sender_id)
    if trust is None:
        info = f"验签失败 / sender {env.sender_id} has no registered signing certificate"
        return Checked("signature", info, root=root)
    try:
        verified = verify_enveloped(root, trust, policy_claimed(root))
    except SignatureError as exc:
        return Checked("signature", f"验签失败 / signature verification failed: {exc}", root=root)
    try:
        spec = detect(verified.root)
    except GatewayError as exc:
        return Checked("format", f"报文类型错误 / unknown message type: {exc.detail}")
    violations = schema_violations(verified.root, spec)
    if violations:
        text = "; ".join(f"{v.path}: {v.message}" for v in violations[:20])
        return Checked("format", f"报文格式错误 / format error: {text}", spec=spec)
    return Checked(None, spec=spec, root=verified.root)


def _fields(element: etree._Element) -> dict[str, str]:
    return {
        etree.QName(c).localname: (c.text or "").strip()
        for c in element
        if isinstance(c.tag, str) and len(c) == 0
    }


def documents_of(root: etree._Element, spec: MessageSpec) -> list[Document]:
    """The documents of a message: head fields (the document's own when it has no head) and
    its list lines."""
    ns = etree.QName(root).namespace
    q = f"{{{ns}}}" if ns else ""
    out = []
    for doc in root.iterfind(f"{q}{spec.document}"):
        head_el = doc.find(f"{q}{spec.head}") if spec.head else doc
        head = _fields(head_el) if head_el is not None else {}
        lines = [
            _fields(c)
            for c in doc
            if isinstance(c.tag, str)
            and etree.QName(c).localname.endswith("List")
            and etree.QName(c).localname != spec.head
        ]
        out.append(Document(spec.type, head, lines))
    return out
