"""Build signed receipts (CEB622, CEB900) and deliver them to the gateway later, in order."""

from __future__ import annotations

import heapq
import itertools
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

import httpx
from lxml import etree

from adapters.dxp import Envelope, build_envelope
from schemas.registry import CEB_NS
from signing.keys import SigningKey
from signing.policy import SignaturePolicy
from signing.xmldsig import sign_enveloped

log = logging.getLogger(__name__)
_Q = f"{{{CEB_NS}}}"


def _element(parent: etree._Element, name: str, text: str) -> None:
    etree.SubElement(parent, f"{_Q}{name}").text = text


def new_guid() -> str:
    return str(uuid.uuid4()).upper()


def inventory_return(fields: dict[str, str]) -> etree._Element:
    """A CEB622 message with one InventoryReturn; ``fields`` in schema order."""
    root = etree.Element(
        f"{_Q}CEB622Message", nsmap={"ceb": CEB_NS}, guid=new_guid(), version="1.0"
    )
    entry = etree.SubElement(root, f"{_Q}InventoryReturn")
    for name in (
        "guid",
        "customsCode",
        "ebpCode",
        "ebcCode",
        "agentCode",
        "copNo",
        "preNo",
        "invtNo",
        "returnStatus",
        "returnTime",
        "returnInfo",
    ):
        if fields.get(name):
            _element(entry, name, fields[name])
    return root


def format_error(cop_msg_id: str, message_type: str, info: str, when: str) -> etree._Element:
    """A CEB900 format-error receipt naming the original message."""
    root = etree.Element(
        f"{_Q}CEB900Message", nsmap={"ceb": CEB_NS}, guid=new_guid(), version="1.0"
    )
    entry = etree.SubElement(root, f"{_Q}MessageReturn")
    for name, value in (
        ("guid", new_guid()),
        ("returnStatus", "100"),
        ("returnInfo", info[:5000]),
        ("returnTime", when),
        ("oriCopMsgId", cop_msg_id),
        ("oriMessageType", message_type),
        ("oriBizMessage", ""),
    ):
        _element(entry, name, value)
    return root


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    body: bytes = field(compare=False)
    tries: int = field(default=0, compare=False)


class ReceiptSender:
    """Signs receipts and POSTs them to the gateway when due, retrying until accepted."""

    def __init__(self, url: str, sender_id: str, key: SigningKey, policy: SignaturePolicy) -> None:
        self.url, self.sender_id = url, sender_id
        self.key, self.policy = key, policy
        self._heap: list[_Due] = []
        self._seq = itertools.count()
        self._cv = threading.Condition()
        self._client = httpx.Client(timeout=httpx.Timeout(5.0, connect=2.0))
        self.delivered = 0
        threading.Thread(target=self._run, name="receipt-sender", daemon=True).start()

    def schedule(self, receipt: etree._Element, delay: float, receiver_id: str) -> None:
        """Sign now, send to ``receiver_id`` (the original sender) after ``delay`` seconds."""
        sign_enveloped(receipt, self.key, self.policy)
        data = etree.tostring(receipt, xml_declaration=True, encoding="UTF-8")
        body = build_envelope(
            Envelope(
                cop_msg_id=receipt.get("guid", ""),
                sender_id=self.sender_id,
                receiver_ids=(receiver_id,),
                msg_type=etree.QName(receipt).localname[:6],
                data=data,
            )
        )
        with self._cv:
            heapq.heappush(self._heap, _Due(time.monotonic() + delay, next(self._seq), body))
            self._cv.notify()

    def pending(self) -> int:
        with self._cv:
            return len(self._heap)

    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._heap or self._heap[0].at > time.monotonic():
                    timeout = (self._heap[0].at - time.monotonic()) if self._heap else None
                    self._cv.wait(timeout)
                due = heapq.heappop(self._heap)
            if not self._post(due.body):
                due.tries += 1
                due.at = time.monotonic() + min(30.0, 0.5 * 2 ** min(due.tries, 6))
                with self._cv:
                    heapq.heappush(self._heap, due)

    def _post(self, body: bytes) -> bool:
        try:
            resp = self._client.post(
                self.url, content=body, headers={"Content-Type": "application/xml"}
            )
        except httpx.HTTPError as exc:
            log.warning("receipt delivery to %s failed: %s", self.url, type(exc).__name__)
            return False
        if resp.status_code >= 500:
            log.warning("gateway answered %s to a receipt; will retry", resp.status_code)
            return False
        if resp.status_code >= 400:
            log.error("gateway refused a receipt (%s): %s", resp.status_code, resp.text[:300])
        self.delivered += 1
        return True
