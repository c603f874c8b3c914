"""Build the gateway's messages to the port (Manifest, Release) and read the port's events
(Arrival, GateOut); the formats are ours, in schemas/port."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from schemas.registry import PORT_NS

_Q = f"{{{PORT_NS}}}"


@dataclass(frozen=True)
class Consignment:
    """How gateway and port name one consignment, plus what the port needs to receive it."""

    logistics_no: str
    bill_no: str | None = None
    invt_no: str | None = None
    traf_mode: str | None = None
    traf_no: str | None = None
    voyage_no: str | None = None
    pack_no: str | None = None
    gross_weight: str | None = None
    advance: bool = True


def _root(name: str, port_code: str) -> etree._Element:
    root = etree.Element(
        f"{_Q}{name}", nsmap={"port": PORT_NS}, id=str(uuid.uuid4()).upper(), version="1.0"
    )
    etree.SubElement(root, f"{_Q}portCode").text = port_code
    return root


def _text(parent: etree._Element, name: str, value: str | None) -> None:
    if value:
        etree.SubElement(parent, f"{_Q}{name}").text = value


def _reference(parent: etree._Element, c: Consignment) -> None:
    _text(parent, "logisticsNo", c.logistics_no)
    _text(parent, "billNo", c.bill_no)
    _text(parent, "invtNo", c.invt_no)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def build_manifest(port_code: str, consignments: list[Consignment]) -> etree._Element:
    """A Manifest of up to 100 consignments (one per inventory list)."""
    root = _root("Manifest", port_code)
    _text(root, "createdAt", _now())
    for c in consignments:
        el = etree.SubElement(root, f"{_Q}Consignment")
        _reference(el, c)
        _text(el, "trafMode", c.traf_mode or "0")
        _text(el, "trafNo", c.traf_no)
        _text(el, "voyageNo", c.voyage_no)
        _text(
            el,
            "packNo",
            c.pack_no if c.pack_no and c.pack_no.isdigit() and int(c.pack_no) > 0 else "1",
        )
        _text(el, "grossWeight", c.gross_weight or "0")
        _text(el, "advance", "true" if c.advance else "false")
    return root


def build_release(
    port_code: str, consignment: Consignment, cleared_by: list[str]
) -> etree._Element:
    """The one Release of a consignment, naming every authority that cleared it."""
    root = _root("Release", port_code)
    el = etree.SubElement(root, f"{_Q}Consignment")
    _reference(el, consignment)
    _text(el, "releasedAt", _now())
    for authority in cleared_by:
        _text(el, "clearedBy", authority)
    return root


@dataclass(frozen=True)
class PortEvent:
    """One consignment's arrival or gate-out, as the port reported it."""

    kind: str  # arrival | gate_out
    logistics_no: str
    bill_no: str | None
    invt_no: str | None
    port_code: str | None
    at: datetime


def read_port_events(root: etree._Element) -> list[PortEvent]:
    """The events of a validated Arrival or GateOut message."""
    name = etree.QName(root).localname
    kind, stamp = ("arrival", "arrivedAt") if name == "Arrival" else ("gate_out", "gateOutAt")
    port_code = root.findtext(f"{_Q}portCode")
    events = []
    for c in root.iterfind(f"{_Q}Consignment"):
        at = datetime.fromisoformat((c.findtext(f"{_Q}{stamp}") or "").replace("Z", "+00:00"))
        events.append(
            PortEvent(
                kind,
                (c.findtext(f"{_Q}logisticsNo") or "").strip(),
                c.findtext(f"{_Q}billNo"),
                c.findtext(f"{_Q}invtNo"),
                port_code,
                # in UTC: SQLite keeps a time's wall clock and drops its offset
                (at if at.tzinfo else at.replace(tzinfo=UTC)).astimezone(UTC),
            )
        )
    return events
