"""An authority reached over HTTP with DXP envelopes: the shape customs, inspection and the
port share. Each authority module only names itself and its quirks."""

from __future__ import annotations

from adapters.breaker import CircuitBreaker
from adapters.dxp import Envelope, build_envelope
from adapters.transport import HttpTransport


class DxpAuthorityClient:
    """POSTs signed messages in a DXP envelope whose CopMsgId is the dispatch id, so the
    authority can deduplicate a retry of the same bytes; behind a circuit breaker."""

    name = "authority"

    def __init__(
        self,
        url: str,
        receiver_id: str,
        transport: HttpTransport,
        breaker: CircuitBreaker | None = None,
    ) -> None:
        self.url = url
        self.receiver_id = receiver_id
        self.transport = transport
        self.breaker = breaker or CircuitBreaker(self.name, failures=5, reset_seconds=10.0)

    def send(self, dispatch_id: str, message_type: str, signed_xml: bytes, sender_id: str) -> None:
        """Wrap the signed bytes in a DXP envelope and POST them."""
        body = build_envelope(
            Envelope(
                cop_msg_id=dispatch_id,
                sender_id=sender_id,
                receiver_ids=(self.receiver_id,),
                msg_type=message_type,
                data=signed_xml,
            )
        )
        self.breaker.call(
            lambda: self.transport.post(self.url, body, {"Content-Type": "application/xml"})
        )
