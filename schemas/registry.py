"""The table of message types the gateway understands, and their compiled schemas.

Adding a message type is adding one row to ``_ROWS`` and one ``schemas/ceb/CEBnnn.xsd``
that includes ``ceb-common.xsd``; nothing else in the gateway lists message types.
"""

from __future__ import annotations

import functools
import pathlib
import threading
from dataclasses import dataclass

from lxml import etree

CEB_NS = "http://www.chinaport.gov.cn/ceb"
SCHEMA_DIR = pathlib.Path(__file__).resolve().parent
CEB_SCHEMA_DIR = SCHEMA_DIR / "ceb"
PORT_NS = "urn:single-window:port:1"
PORT_SCHEMA_DIR = SCHEMA_DIR / "port"


@dataclass(frozen=True)
class MessageSpec:
    """What the gateway knows about one message type, without parsing its schema."""

    type: str
    root: str
    namespace: str
    xsd: pathlib.Path
    kind: str
    document: str | None
    head: str | None
    reply: str | None
    title: str


# type, kind, document element, head element, reply type, title
_ROWS: tuple[tuple[str, str, str | None, str | None, str | None, str], ...] = (
    # import (进口), declarant -> authority
    ("CEB311", "declaration", "Order", "OrderHead", "CEB312", "import order"),
    ("CEB411", "declaration", "Payment", "PaymentHead", "CEB412", "import payment"),
    ("CEB511", "declaration", "Logistics", "LogisticsHead", "CEB512", "import waybill"),
    ("CEB513", "declaration", "LogisticsStatus", None, "CEB514", "waybill status"),
    ("CEB621", "declaration", "Inventory", "InventoryHead", "CEB622", "import inventory list"),
    ("CEB623", "declaration", "InvtCancel", None, "CEB624", "inventory cancel application"),
    ("CEB625", "declaration", "InvtRefund", "InvtRefundHead", "CEB626", "return application"),
    (
        "CEB711",
        "declaration",
        "Delivery",
        "DeliveryHead",
        "CEB712",
        "bonded-warehouse receipt (1210)",
    ),
    # import, authority -> gateway
    ("CEB312", "receipt", "OrderReturn", None, None, "import order receipt"),
    ("CEB412", "receipt", "PaymentReturn", None, None, "import payment receipt"),
    ("CEB512", "receipt", "LogisticsReturn", None, None, "import waybill receipt"),
    ("CEB514", "receipt", "LogisticsStatusReturn", None, None, "waybill status receipt"),
    ("CEB622", "receipt", "InventoryReturn", None, None, "import inventory list receipt"),
    ("CEB624", "receipt", "InvtCancelReturn", None, None, "inventory cancel receipt"),
    ("CEB626", "receipt", "InvtRefundReturn", None, None, "return application receipt"),
    ("CEB712", "receipt", "DeliveryReturn", None, None, "bonded-warehouse receipt reply"),
    ("CEB816", "receipt", "Tax", "TaxHeadRd", None, "electronic tax bill"),
    ("CEB818", "receipt", "Tax", "TaxHeadStatus", None, "tax bill status"),
    ("CEB900", "receipt", "MessageReturn", None, None, "format-error receipt"),
    # export (出口), declarant -> authority
    ("CEB303", "declaration", "Order", "OrderHead", "CEB304", "export order"),
    ("CEB403", "declaration", "Receipts", None, "CEB404", "export payment receipt"),
    ("CEB505", "declaration", "Logistics", None, "CEB506", "export waybill"),
    ("CEB507", "declaration", "Arrival", "ArrivalHead", "CEB508", "export arrival at port"),
    ("CEB509", "declaration", "Departure", "DepartureHead", "CEB510", "export departure"),
    ("CEB603", "declaration", "Inventory", "InventoryHead", "CEB604", "export inventory list"),
    ("CEB605", "declaration", "InvtCancel", None, "CEB606", "export cancel application"),
    (
        "CEB701",
        "declaration",
        "SummaryApply",
        "SummaryApplyHead",
        "CEB702",
        "export summary application",
    ),
    # export, authority -> gateway
    ("CEB304", "receipt", "OrderReturn", None, None, "export order receipt"),
    ("CEB404", "receipt", "ReceiptsReturn", None, None, "export payment receipt reply"),
    ("CEB506", "receipt", "LogisticsReturn", None, None, "export waybill receipt"),
    ("CEB508", "receipt", "ArrivalReturn", None, None, "export arrival receipt"),
    ("CEB510", "receipt", "DepartureReturn", None, None, "export departure receipt"),
    ("CEB604", "receipt", "InventoryReturn", None, None, "export inventory list receipt"),
    ("CEB606", "receipt", "InvtCancelReturn", None, None, "export cancel receipt"),
    ("CEB702", "receipt", "SummaryReturn", None, None, "export summary receipt"),
    ("CEB792", "receipt", "SummaryResult", "SummaryResultHead", None, "export summary result"),
)


def _ceb_spec(row: tuple[str, str, str | None, str | None, str | None, str]) -> MessageSpec:
    """Expand a table row by the CEB naming convention (root CEBnnnMessage, CEBnnn.xsd)."""
    type_, kind, document, head, reply, title = row
    return MessageSpec(
        type=type_,
        root=f"{type_}Message",
        namespace=CEB_NS,
        xsd=CEB_SCHEMA_DIR / f"{type_}.xsd",
        kind=kind,
        document=document,
        head=head,
        reply=reply,
        title=title,
    )


# Port messages are ours (schemas/port): type, root, kind, title. "port-out" goes from the
# gateway to the port, "port-in" comes from the port.
_PORT_ROWS: tuple[tuple[str, str, str, str], ...] = (
    ("PortManifest", "Manifest", "port-out", "manifest to the port"),
    ("PortRelease", "Release", "port-out", "release to the port (once per consignment)"),
    ("PortArrival", "Arrival", "port-in", "arrival at the port (运抵)"),
    ("PortGateOut", "GateOut", "port-in", "gate-out from the terminal"),
)


def _port_spec(row: tuple[str, str, str, str]) -> MessageSpec:
    type_, root, kind, title = row
    return MessageSpec(
        type=type_,
        root=root,
        namespace=PORT_NS,
        xsd=PORT_SCHEMA_DIR / f"{root}.xsd",
        kind=kind,
        document="Consignment",
        head=None,
        reply=None,
        title=title,
    )


_SPECS: dict[str, MessageSpec] = {
    spec.type: spec for spec in [*map(_ceb_spec, _ROWS), *map(_port_spec, _PORT_ROWS)]
}
_BY_ROOT: dict[tuple[str, str], MessageSpec] = {
    (spec.namespace, spec.root): spec for spec in _SPECS.values()
}


def all_specs() -> list[MessageSpec]:
    """Every known message type, in table order (for listings and error messages)."""
    return list(_SPECS.values())


def get_spec(message_type: str) -> MessageSpec:
    """The spec of a type such as ``"CEB621"``; ``KeyError`` names the unknown type."""
    try:
        return _SPECS[message_type]
    except KeyError:
        raise KeyError(f"unknown message type {message_type!r}") from None


def find_spec(namespace: str | None, local_name: str) -> MessageSpec | None:
    """The spec whose root element is ``{namespace}local_name``, or None."""
    return _BY_ROOT.get((namespace or "", local_name))


_COMPILING = threading.Lock()


def compile_schema(spec: MessageSpec) -> etree.XMLSchema:
    """A fresh compiled schema of ``spec`` (about 0.5 ms), for callers that need their own.

    One compile at a time per process: libxml2's schema parser is not safe to run in two
    threads at once (seen under load as "xmlSchemaPValAttrNodeValue, the given type is not
    a built-in type", after which every compile in the process failed)."""
    parser = etree.XMLParser(no_network=True, resolve_entities=False, load_dtd=False)
    with _COMPILING:
        return etree.XMLSchema(etree.parse(str(spec.xsd), parser))


@functools.cache
def schema_for(spec: MessageSpec) -> etree.XMLSchema:
    """The compiled schema of ``spec``, loaded once per process and shared.

    ``validate()`` on it is safe from any thread, but lxml keeps the last run's
    ``error_log`` on the instance; to read errors under concurrency use
    ``gateway.xml.validation.schema_violations`` (one instance per thread) instead.
    """
    return compile_schema(spec)


def preload_schemas() -> int:
    """Compile every schema now (at start, before threads serve); returns how many."""
    specs = all_specs()
    for spec in specs:
        schema_for(spec)
    return len(specs)
