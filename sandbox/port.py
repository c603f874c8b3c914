"""The sandbox port (terminal operator): takes manifests, reports arrival (运抵) and gate-out,
and accepts exactly one release per consignment, answering a second one with 409 so tests
can prove the gateway releases once. It answers synchronously: the gateway's own identity
signs what it sends here, and a refusal is an HTTP error, not a receipt."""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from lxml import etree

from adapters.dxp import Envelope
from gateway.domain.errors import GatewayError
from gateway.xml.parsing import ParseLimits, parse_xml
from gateway.xml.validation import detect, schema_violations
from sandbox.intake import MessageBook
from sandbox.numbers import china_now
from sandbox.outbox import Outbox
from sandbox.receipts import PortConsignment, port_event
from sandbox.registry import SenderRegistry, policy_claimed
from schemas.registry import PORT_NS
from signing.errors import SignatureError
from signing.xmldsig import verify_enveloped

_P = f"{{{PORT_NS}}}"
RECEIVED_KEPT = 10_000  # payloads kept for GET /admin/port/received (the leak scan)


@dataclass(frozen=True)
class PortAnswer:
    """An HTTP status and JSON body for the gateway."""

    status: int
    body: dict[str, Any]

    @property
    def applied(self) -> bool:
        return self.status == 200 and self.body.get("status") != "duplicate"


def _consignments(root: etree._Element) -> list[PortConsignment]:
    return [
        PortConsignment(
            (c.findtext(f"{_P}logisticsNo") or "").strip(),
            (c.findtext(f"{_P}billNo") or "").strip(),
            (c.findtext(f"{_P}invtNo") or "").strip(),
        )
        for c in root.iterfind(f"{_P}Consignment")
    ]


class SandboxPort:
    """The port, as the gateway sees it over HTTP."""

    authority = "port"

    def __init__(
        self,
        registry: SenderRegistry,
        outbox: Outbox,
        arrival_delay: float,
        gate_out_delay: float,
        limits: ParseLimits | None = None,
    ) -> None:
        self.registry, self.outbox = registry, outbox
        self.arrival_delay, self.gate_out_delay = arrival_delay, gate_out_delay
        self.limits = limits or ParseLimits()
        self.records = MessageBook()
        self.manifests: Counter[str] = Counter()
        self.releases: Counter[str] = Counter()
        self.first_release: dict[str, str] = {}  # logisticsNo -> CopMsgId
        self.second_releases = 0
        self.arrivals = 0
        self.gate_outs = 0
        # What the gateway sent, as received (before any check): the port is no authority
        # over buyers, so the leak scan (tests/faults/leak.py) reads these for their data.
        self.received: deque[bytes] = deque(maxlen=RECEIVED_KEPT)
        self._lock = threading.Lock()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            port = {
                "manifests": dict(self.manifests),
                "releases": dict(self.releases),
                "second_releases": self.second_releases,
                "arrivals": self.arrivals,
                "gate_outs": self.gate_outs,
            }
        return {**self.records.snapshot(), **port, "events": self.outbox.snapshot()}

    def received_payloads(self) -> list[bytes]:
        """The last RECEIVED_KEPT payloads (DXP Data, decoded), oldest first."""
        with self._lock:
            return list(self.received)

    def receive(self, env: Envelope) -> PortAnswer:
        """Handle one manifest or release; never applies the same CopMsgId twice."""
        with self._lock:
            self.received.append(env.data)
        if self.records.seen(env.cop_msg_id):
            self.records.count_duplicate()
            return PortAnswer(200, {"status": "duplicate", "copMsgId": env.cop_msg_id})
        try:
            root = parse_xml(env.data, self.limits)
        except GatewayError as exc:
            return PortAnswer(400, {"error": f"not well-formed: {exc.detail}"})
        trust = self.registry.trust_for(env.sender_id)
        if trust is None:
            return PortAnswer(
                403, {"error": f"sender {env.sender_id} has no registered signing certificate"}
            )
        try:
            doc = verify_enveloped(root, trust, policy_claimed(root)).root
        except SignatureError as exc:
            return PortAnswer(403, {"error": f"signature verification failed: {exc}"})
        try:
            spec = detect(doc)
        except GatewayError as exc:
            return PortAnswer(400, {"error": exc.detail})
        if spec.type not in ("PortManifest", "PortRelease"):
            return PortAnswer(400, {"error": f"the port does not take {spec.type}"})
        violations = schema_violations(doc, spec)
        if violations:
            return PortAnswer(
                400,
                {
                    "error": "format error",
                    "violations": [
                        {"path": v.path, "code": v.code, "message": v.message}
                        for v in violations[:50]
                    ],
                },
            )
        if spec.type == "PortManifest":
            return self._manifest(env, doc)
        return self._release(env, doc)

    def _manifest(self, env: Envelope, doc: etree._Element) -> PortAnswer:
        consignments = _consignments(doc)
        port_code = (doc.findtext(f"{_P}portCode") or "").strip()
        with self._lock:
            if not self.records.register(env.cop_msg_id, "PortManifest"):
                return PortAnswer(200, {"status": "duplicate", "copMsgId": env.cop_msg_id})
            for c in consignments:
                self.manifests[c.logistics_no] += 1
            self.arrivals += 1
        at = china_now() + timedelta(seconds=self.arrival_delay)
        event = port_event("Arrival", port_code, consignments, at)
        self.outbox.schedule(event, self.arrival_delay, env.sender_id, "PortArrival")
        return PortAnswer(
            200,
            {
                "status": "accepted",
                "copMsgId": env.cop_msg_id,
                "consignments": [c.logistics_no for c in consignments],
            },
        )

    def _release(self, env: Envelope, doc: etree._Element) -> PortAnswer:
        (consignment,) = _consignments(doc)  # the schema allows exactly one
        number = consignment.logistics_no
        port_code = (doc.findtext(f"{_P}portCode") or "").strip()
        with self._lock:
            if self.records.seen(env.cop_msg_id):
                self.records.count_duplicate()
                return PortAnswer(200, {"status": "duplicate", "copMsgId": env.cop_msg_id})
            if number not in self.manifests:
                return PortAnswer(
                    404, {"error": "no manifest for this consignment", "logisticsNo": number}
                )
            if number in self.first_release:
                self.second_releases += 1
                return PortAnswer(
                    409,
                    {
                        "error": "already released",
                        "logisticsNo": number,
                        "first_copMsgId": self.first_release[number],
                    },
                )
            self.records.register(env.cop_msg_id, "PortRelease")
            self.first_release[number] = env.cop_msg_id
            self.releases[number] += 1
            self.gate_outs += 1
        at = china_now() + timedelta(seconds=self.gate_out_delay)
        event = port_event("GateOut", port_code, [consignment], at)
        self.outbox.schedule(event, self.gate_out_delay, env.sender_id, "PortGateOut")
        return PortAnswer(
            200, {"status": "released", "copMsgId": env.cop_msg_id, "logisticsNo": number}
        )
