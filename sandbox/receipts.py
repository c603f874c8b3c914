"""Build the authorities' receipts (any CEB reply type, CEB900, CEB816) and port events.

Reply elements are filled in the order their schema gives, from the fields of the document
being answered plus what the authority assigns, so every receipt validates against ours.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import xmlschema
from lxml import etree

from sandbox.tax import TaxBill
from schemas.registry import CEB_NS, PORT_NS, get_spec

_Q = f"{{{CEB_NS}}}"
_P = f"{{{PORT_NS}}}"

# Values for required reply fields the answered document may not carry.
FALLBACKS: dict[str, str] = {"statisticsFlag": "A", "msgSeqNo": "1", "logisticsStatus": "S"}


def new_guid() -> str:
    """A fresh 36-character upper-case GUID, as every CEB head and message needs."""
    return str(uuid.uuid4()).upper()


def _element(parent: etree._Element, name: str, text: str) -> None:
    etree.SubElement(parent, f"{_Q}{name}").text = text


@dataclass(frozen=True)
class FieldSpec:
    """One child of a reply element: its name, whether it is required, its length cap."""

    name: str
    required: bool
    max_length: int | None


@functools.cache
def reply_fields(reply_type: str) -> tuple[FieldSpec, ...]:
    """The children of a reply type's return element, in schema order (read once)."""
    spec = get_spec(reply_type)
    schema = xmlschema.XMLSchema(str(spec.xsd))
    root = schema.elements[spec.root]
    entry = next(e for e in root.type.content.iter_elements() if e.local_name == spec.document)
    out = []
    for child in entry.type.content.iter_elements():
        limit = None
        if child.type.is_simple():
            limit = getattr(child.type, "max_length", None) or getattr(child.type, "length", None)
        out.append(FieldSpec(child.local_name, child.min_occurs > 0, limit))
    return tuple(out)


def build_reply(reply_type: str, fields: Mapping[str, str]) -> etree._Element:
    """A ``reply_type`` message with one return entry; required fields never left empty."""
    spec = get_spec(reply_type)
    root = etree.Element(f"{_Q}{spec.root}", nsmap={"ceb": CEB_NS}, guid=new_guid(), version="1.0")
    entry = etree.SubElement(root, f"{_Q}{spec.document}")
    for f in reply_fields(reply_type):
        value = fields.get(f.name) or ""
        if not value and f.required:
            value = FALLBACKS.get(f.name, "")
            if not value and f.name == "copNo":
                value = (fields.get("guid") or new_guid())[: f.max_length or 20]
        if not value:
            if f.required and f.name != "oriBizMessage":
                value = "0"
            else:
                continue
        _element(entry, f.name, value[: f.max_length] if f.max_length else value)
    return root


def inventory_return(fields: dict[str, str]) -> etree._Element:
    """A CEB622 message with one InventoryReturn (kept for callers that build one directly)."""
    root = etree.Element(
        f"{_Q}CEB622Message", nsmap={"ceb": CEB_NS}, guid=new_guid(), version="1.0"
    )
    entry = etree.SubElement(root, f"{_Q}InventoryReturn")
    for f in reply_fields("CEB622"):
        if fields.get(f.name):
            _element(entry, f.name, fields[f.name])
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
        ("oriCopMsgId", cop_msg_id[:255]),
        ("oriMessageType", message_type[:15]),
        ("oriBizMessage", ""),
    ):
        _element(entry, name, value)
    return root


def tax_bill_message(bill: TaxBill, head: Mapping[str, str], when: str) -> etree._Element:
    """A CEB816 electronic tax bill for one inventory list."""
    root = etree.Element(
        f"{_Q}CEB816Message", nsmap={"ceb": CEB_NS}, guid=new_guid(), version="1.0"
    )
    tax = etree.SubElement(root, f"{_Q}Tax")
    h = etree.SubElement(tax, f"{_Q}TaxHeadRd")
    for name, value in (
        ("guid", new_guid()),
        ("returnTime", when),
        ("invtNo", bill.invt_no),
        ("taxNo", bill.tax_no),
        ("customsTax", str(bill.customs_tax)),
        ("valueAddedTax", str(bill.value_added_tax)),
        ("consumptionTax", str(bill.consumption_tax)),
        ("status", "1"),
        ("assureCode", head.get("assureCode", "")),
        ("ebcCode", head.get("ebcCode", "")),
        ("logisticsCode", head.get("logisticsCode", "")),
        ("agentCode", head.get("agentCode", "")),
        ("customsCode", head.get("customsCode", "")),
    ):
        if value:
            _element(h, name, value)
    for line in bill.lines:
        row = etree.SubElement(tax, f"{_Q}TaxListRd")
        for name, value in (
            ("gnum", str(line.gnum)),
            ("gcode", line.gcode),
            ("taxPrice", str(line.tax_price)),
            ("customsTax", str(line.customs_tax)),
            ("valueAddedTax", str(line.value_added_tax)),
            ("consumptionTax", str(line.consumption_tax)),
        ):
            _element(row, name, value)
    return root


@dataclass(frozen=True)
class PortConsignment:
    """A consignment as the port names it in its events."""

    logistics_no: str
    bill_no: str = ""
    invt_no: str = ""


def port_event(
    kind: str, port_code: str, consignments: Sequence[PortConsignment], at: datetime
) -> etree._Element:
    """A port ``Arrival`` or ``GateOut`` message (one entry per consignment)."""
    stamp = "arrivedAt" if kind == "Arrival" else "gateOutAt"
    root = etree.Element(f"{_P}{kind}", nsmap={"port": PORT_NS}, id=new_guid(), version="1.0")
    etree.SubElement(root, f"{_P}portCode").text = port_code
    for c in consignments:
        entry = etree.SubElement(root, f"{_P}Consignment")
        etree.SubElement(entry, f"{_P}logisticsNo").text = c.logistics_no
        if c.bill_no:
            etree.SubElement(entry, f"{_P}billNo").text = c.bill_no
        if c.invt_no:
            etree.SubElement(entry, f"{_P}invtNo").text = c.invt_no
        etree.SubElement(entry, f"{_P}{stamp}").text = at.isoformat(timespec="seconds")
    return root


def summary_result_message(
    head: Mapping[str, str],
    goods: list[tuple[str, str, str, str]],
    sum_no: str,
    entry_id: str,
    when: str,
) -> etree._Element:
    """A CEB792 summary result for one accepted CEB701 application (same guid as its head)."""
    root = etree.Element(
        f"{_Q}CEB792Message", nsmap={"ceb": CEB_NS}, guid=new_guid(), version="1.0"
    )
    result = etree.SubElement(root, f"{_Q}SummaryResult")
    h = etree.SubElement(result, f"{_Q}SummaryResultHead")
    customs = head.get("customsCode", "0000")
    for name, value in (
        ("guid", head.get("guid", "")),
        ("customsCode", customs),
        ("sumNo", sum_no),
        ("opDate", when),
        ("declSeqNo", entry_id),
        ("entryId", entry_id),
        ("decState", "10"),
        ("agentCode", head.get("agentCode", "")),
        ("agentName", head.get("agentName", "")),
        ("ebcCode", head.get("ebcCode", "")),
        ("ebcName", head.get("ebcName", "")),
        ("declAgentCode", head.get("declAgentCode", "")),
        ("declAgentName", head.get("declAgentName", "")),
        ("grossWeight", head.get("grossWeight", "0")),
        ("netWeight", head.get("netWeight", "0")),
        ("msgCount", "1"),
        ("msgSeqNo", "1"),
    ):
        if value:
            _element(h, name, value)
    # goods: (invtNo, logisticsNo, gnum, gcode) of every line of every summarised list
    for seq, (number, logistics_no, gnum, gcode) in enumerate(goods, start=1):
        line = etree.SubElement(result, f"{_Q}SummaryResultList")
        for name, value in (
            ("invtNo", number),
            ("logisticsNo", logistics_no),
            ("gseqno", str(seq)),
            ("gnum", gnum),
            ("gcode", gcode),
        ):
            _element(line, name, value)
    return root
