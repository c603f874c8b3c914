"""Customs: signed CEB messages in a DXP envelope, POSTed to the customs endpoint."""

from __future__ import annotations

from adapters.dxp import Envelope, build_envelope
from adapters.transport import HttpTransport


class CustomsClient:
    """The customs adapter; the same class talks to the sandbox or the real endpoint."""

    name = "customs"

    def __init__(
        self, url: str, sender_id: str, receiver_id: str, transport: HttpTransport
    ) -> None:
        self.url = url
        self.sender_id = sender_id
        self.receiver_id = receiver_id
        self.transport = transport

    def send(self, dispatch_id: str, message_type: str, signed_xml: bytes) -> None:
        """Wrap the signed bytes in a DXP envelope and POST them."""
        body = build_envelope(
            Envelope(
                cop_msg_id=dispatch_id,
                sender_id=self.sender_id,
                receiver_ids=(self.receiver_id,),
                msg_type=message_type,
                data=signed_xml,
            )
        )
        self.transport.post(self.url, body, {"Content-Type": "application/xml"})
