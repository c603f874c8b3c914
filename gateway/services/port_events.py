"""The port's arrival (运抵) and gate-out events: verified, deduplicated, applied.

Arrival completes an advance declaration's last condition (运抵验放): a cleared consignment is
released the moment the port confirms it is there. Gate-out after release closes it. An
arrival may also come before the declaration; the declaration then starts as arrived.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from adapters.dxp import read_envelope
from gateway.domain.audit import Actor
from gateway.domain.errors import ReceiptRejected, Violation
from gateway.domain.statuses import DeclarationStatus
from gateway.persistence import repository as repo
from gateway.services.inbound import Pending, apply_message, settled_before
from gateway.services.runtime import Runtime
from gateway.services.status import refresh_status
from gateway.xml.parsing import parse_xml
from gateway.xml.port_messages import PortEvent, read_port_events
from gateway.xml.validation import detect, schema_violations
from signing.errors import SignatureError
from signing.xmldsig import verify_enveloped

PORT_EVENT_TYPES = ("PortArrival", "PortGateOut")


@dataclass
class PortEventsOutcome:
    applied: int = 0
    duplicates: int = 0
    unmatched: list[str] = field(default_factory=list)

    def settled(self) -> bool:
        """An unmatched event is kept for a later declaration: nothing waits."""
        return True

    def absorb(self, other: PortEventsOutcome) -> None:
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.unmatched += other.unmatched


def _reject(code: str, message: str, path: str = "/") -> ReceiptRejected:
    return ReceiptRejected(message, violations=[Violation(path, code, message)])


def record_port_events(rt: Runtime, body: bytes) -> PortEventsOutcome:
    """Verify a port message (Arrival / GateOut in a DXP envelope) and apply its events."""
    envelope = read_envelope(parse_xml(body, rt.limits))
    if rt.senders.get(envelope.sender_id) != "port":
        raise _reject(
            "port.unknown_sender",
            f"SenderId {envelope.sender_id} is not the port",
            "/DxpMsg/TransInfo/SenderId",
        )
    root = parse_xml(envelope.data, rt.limits)
    if settled_before(rt, envelope.data):
        return PortEventsOutcome(duplicates=len(read_port_events(root)))
    try:
        verified = verify_enveloped(
            root, rt.trust["port"], rt.receipt_policy, engine=rt.verify_engine
        )
    except SignatureError as exc:
        raise _reject(exc.code, f"port message signature refused: {exc}") from None
    spec = detect(verified.root)
    if spec.type not in PORT_EVENT_TYPES:
        raise _reject("port.not_an_event", f"{spec.type} is not a port event")
    violations = schema_violations(verified.root, spec)
    if violations:
        raise ReceiptRejected(f"The {spec.type} message is invalid.", violations=violations)
    steps = [partial(_apply, rt, event) for event in read_port_events(verified.root)]
    return apply_message(rt, PortEventsOutcome, ("port", spec.type, envelope.data), steps)


def _apply(
    rt: Runtime,
    event: PortEvent,
    conn: Any,
    digest: str,
    outcome: PortEventsOutcome,
    pending: Pending,
) -> None:
    fingerprint = hashlib.sha256(
        f"{event.kind}|{event.logistics_no}|{event.at.isoformat()}".encode()
    ).hexdigest()
    if repo.port_event_seen(conn, fingerprint):
        outcome.duplicates += 1
        return
    repo.insert_port_event(
        conn,
        fingerprint=fingerprint,
        kind=event.kind,
        logistics_no=event.logistics_no,
        bill_no=event.bill_no,
        invt_no=event.invt_no,
        port_code=event.port_code,
        at=event.at,
        message_digest=digest,
    )
    decls = repo.open_declarations_by_logistics_no(
        conn, event.logistics_no, sorted(rt.rules.port_types)
    )
    if not decls:
        outcome.unmatched.append(event.logistics_no)  # kept: a later declaration uses it
    for decl in decls:
        if event.kind == "arrival":
            _arrived(conn, rt, decl, event, pending.ring)
        else:
            _gate_out(conn, decl, event)
    pending.audit(
        Actor("authority", "port"),
        f"port_event.{event.kind}",
        [d["id"] for d in decls],
        {"logistics_no": event.logistics_no, "port_code": event.port_code},
    )
    outcome.applied += 1


def _arrived(conn, rt: Runtime, decl, event: PortEvent, ring: list[str]) -> None:  # type: ignore[no-untyped-def]
    at = repo.now()
    if decl["arrived_at"] is not None:
        return
    repo.update_declaration(conn, decl["id"], arrived_at=event.at)
    repo.insert_events(
        conn,
        [
            dict(
                declaration_id=decl["id"],
                at=at,
                kind="arrived",
                source="port",
                status=decl["status"],
                info=f"arrived at port {event.port_code} (运抵) at {event.at.isoformat()}",
            )
        ],
    )
    # refresh_status reads the row again itself, locked, with the arrival just written.
    status = refresh_status(conn, rt, decl, source="port", at=at, ring=ring)
    if status != decl["status"]:
        repo.insert_events(
            conn,
            [
                dict(
                    declaration_id=decl["id"],
                    at=at,
                    kind="status",
                    source="port",
                    status=status,
                    info=f"{decl['status']} -> {status}",
                )
            ],
        )


def _gate_out(conn, decl, event: PortEvent) -> None:  # type: ignore[no-untyped-def]
    at = repo.now()
    if decl["gate_out_at"] is not None:
        return
    closing = decl["status"] == DeclarationStatus.RELEASED.value
    status = DeclarationStatus.CLOSED.value if closing else decl["status"]
    repo.update_declaration(
        conn, decl["id"], gate_out_at=event.at, **({"status": status} if closing else {})
    )
    info = f"left the terminal gate at {event.at.isoformat()}"
    if not closing:
        info += f" [while {decl['status']}: the port let out goods not released]"
    repo.insert_events(
        conn,
        [
            dict(
                declaration_id=decl["id"],
                at=at,
                kind="gate_out",
                source="port",
                status=status,
                info=info,
            )
        ],
    )
