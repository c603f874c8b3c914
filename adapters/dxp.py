"""The DXP transport envelope (dxp:DxpMsg) that carries a signed CEB message over HTTP.

TransInfo names the message (CopMsgId, the id the receiver dedupes on), its sender and
receivers, and its type; Data is the base64 of the signed XML bytes, which travel untouched.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from gateway.domain.errors import MalformedRequest, Violation

DXP_NS = "http://www.chinaport.gov.cn/dxp"
_Q = f"{{{DXP_NS}}}"


@dataclass(frozen=True)
class Envelope:
    """One DXP message: routing data plus the exact payload bytes."""

    cop_msg_id: str
    sender_id: str
    receiver_ids: tuple[str, ...]
    msg_type: str
    data: bytes
    created: str = ""


def build_envelope(env: Envelope) -> bytes:
    """Serialise an envelope to UTF-8 XML bytes."""
    root = etree.Element(f"{_Q}DxpMsg", nsmap={"dxp": DXP_NS}, ver="1.0")
    info = etree.SubElement(root, f"{_Q}TransInfo")
    etree.SubElement(info, f"{_Q}CopMsgId").text = env.cop_msg_id
    etree.SubElement(info, f"{_Q}SenderId").text = env.sender_id
    receivers = etree.SubElement(info, f"{_Q}ReceiverIds")
    for rid in env.receiver_ids:
        etree.SubElement(receivers, f"{_Q}ReceiverId").text = rid
    created = env.created or datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    etree.SubElement(info, f"{_Q}CreatTime").text = created
    etree.SubElement(info, f"{_Q}MsgType").text = env.msg_type
    etree.SubElement(root, f"{_Q}Data").text = base64.b64encode(env.data).decode("ascii")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _text(info: etree._Element, name: str) -> str:
    el = info.find(f"{_Q}{name}")
    if el is None or not (el.text or "").strip():
        raise MalformedRequest(
            f"The DXP envelope has no {name}.",
            violations=[
                Violation(f"/DxpMsg/TransInfo/{name}", "dxp.missing", f"{name} is required")
            ],
        )
    return (el.text or "").strip()


def read_envelope(root: etree._Element) -> Envelope:
    """Read an already safely parsed DxpMsg element; raises MalformedRequest naming the field."""
    if root.tag != f"{_Q}DxpMsg":
        raise MalformedRequest(
            "Expected a DXP envelope (dxp:DxpMsg).",
            violations=[Violation("/", "dxp.not_envelope", f"root element is {root.tag}")],
        )
    info = root.find(f"{_Q}TransInfo")
    if info is None:
        raise MalformedRequest(
            "The DXP envelope has no TransInfo.",
            violations=[Violation("/DxpMsg/TransInfo", "dxp.missing", "TransInfo is required")],
        )
    data_el = root.find(f"{_Q}Data")
    try:
        data = base64.b64decode((data_el.text or "") if data_el is not None else "", validate=True)
    except (binascii.Error, ValueError):
        data = b""
    if not data:
        raise MalformedRequest(
            "The DXP envelope's Data is missing or not base64.",
            violations=[
                Violation("/DxpMsg/Data", "dxp.data", "Data must be base64 of the message")
            ],
        )
    receivers = tuple(
        (r.text or "").strip() for r in info.iterfind(f"{_Q}ReceiverIds/{_Q}ReceiverId")
    )
    return Envelope(
        cop_msg_id=_text(info, "CopMsgId"),
        sender_id=_text(info, "SenderId"),
        receiver_ids=receivers,
        msg_type=_text(info, "MsgType"),
        data=data,
        created=(info.findtext(f"{_Q}CreatTime") or "").strip(),
    )
