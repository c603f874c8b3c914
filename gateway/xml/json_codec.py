"""JSON of a CEB message <-> its XML, through the same schema (xmlschema's codec).

The JSON form of a message is one object keyed by the root element name, with attributes
prefixed ``@`` and elements by their CEB field names, e.g.
``{"CEB621Message": {"@guid": "…", "@version": "1.0", "Inventory": [{"InventoryHead": {…},
"InventoryList": [{…}]}], "BaseTransfer": {…}}}``. Amounts travel as strings so no digit is
lost. A JSON submission is turned into XML here and then validated exactly like XML.
"""

from __future__ import annotations

import functools
import json
import xml.etree.ElementTree as ET
from typing import Any

import xmlschema
from lxml import etree

from gateway.domain.errors import MalformedRequest, UnknownMessageType, Violation
from schemas.registry import CEB_NS, MessageSpec, all_specs, find_spec

ET.register_namespace("ceb", CEB_NS)


@functools.cache
def _codec(spec: MessageSpec) -> xmlschema.XMLSchema:
    """The xmlschema view of one of our schemas (slow to build: once per type)."""
    return xmlschema.XMLSchema(str(spec.xsd))


def _violation(pointer: str, code: str, message: str) -> Violation:
    return Violation(pointer, code, message)


def parse_json(body: bytes) -> Any:
    """Decode a JSON body, or say where it is broken."""
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError:
        raise MalformedRequest(
            "JSON must be UTF-8.",
            violations=[_violation("/", "json.encoding", "the body is not UTF-8")],
        ) from None
    except json.JSONDecodeError as exc:
        raise MalformedRequest(
            f"The body is not valid JSON: {exc.msg}.",
            violations=[Violation("/", "json.malformed", exc.msg, line=exc.lineno)],
        ) from None


def json_to_xml(obj: Any) -> bytes:
    """The XML bytes of a message given as JSON; schema problems surface in XML validation."""
    if not isinstance(obj, dict) or len(obj) != 1:
        raise MalformedRequest(
            "A JSON message is one object keyed by its root element, e.g. "
            '{"CEB621Message": {...}}.',
            violations=[_violation("/", "json.shape", "expected exactly one key: the root")],
        )
    ((root_name, content),) = obj.items()
    spec = find_spec(CEB_NS, str(root_name))
    if spec is None:
        known = ", ".join(s.root for s in all_specs() if s.kind == "declaration")
        raise UnknownMessageType(
            f"{root_name!r} is not a known message root.",
            violations=[_violation("/", "message.unknown_type", f"use one of: {known}")],
        )
    if not isinstance(content, dict):
        raise MalformedRequest(
            f"{root_name} must be an object.",
            violations=[_violation(f"/{root_name}", "json.shape", "expected an object")],
        )
    # "skip": values go into the XML as sent (a lax encode would blank an invalid number),
    # so the XML validation reports what the sender wrote.
    encoded = _codec(spec).encode(
        content, path=f"{{{CEB_NS}}}{spec.root}", namespaces={"": CEB_NS}, validation="skip"
    )
    element = encoded[0] if isinstance(encoded, tuple) else encoded
    if element is None:
        raise MalformedRequest(
            f"{root_name} could not be turned into XML.",
            violations=[
                _violation(f"/{root_name}", "json.shape", "the object does not fit the message")
            ],
        )
    # Errors found while encoding are found again, with paths, by the XML validation.
    return ET.tostring(element, encoding="utf-8", xml_declaration=True)


def xml_to_json(root: etree._Element, spec: MessageSpec) -> dict[str, Any]:
    """The JSON form of a validated message (amounts as strings)."""
    data = _codec(spec).decode(
        etree.tostring(root).decode("utf-8"),
        strip_namespaces=True,
        preserve_root=False,
        decimal_type=str,
        validation="lax",
    )
    content = data[0] if isinstance(data, tuple) else data
    return {spec.root: content}
