"""The client certificate the TLS handshake verified, read from the WSGI environ.

gunicorn puts the connection's socket in every request's environ (``gunicorn.socket``); on
the TLS listener it is the ``ssl.SSLSocket`` whose handshake checked the client certificate
against ``--ca-certs``. Reading the certificate there, rather than from a header a proxy
would set, means nothing a client sends can claim one: only the handshake can. It is read
lazily (only the endpoints that care pay for it) and kept in the environ for the request.
"""

from __future__ import annotations

import hashlib
import ssl
from dataclasses import dataclass
from typing import Any

ENVIRON_KEY = "gateway.client_certificate"
_ABSENT = object()


@dataclass(frozen=True)
class ClientCertificate:
    """Who the handshake proved the caller to be: the subject's CN and the certificate's
    SHA-256 fingerprint (hex), for the audit of who called."""

    common_name: str
    fingerprint: str


def _common_name(peer: dict[str, Any]) -> str:
    for rdn in peer.get("subject", ()):
        for name, value in rdn:
            if name == "commonName":
                return str(value)
    return ""


def _verified(sock: ssl.SSLSocket) -> ClientCertificate | None:
    """The peer's certificate when the handshake verified it; None otherwise. The dict form
    is empty unless the certificate was validated, and a context that verifies nothing is
    not trusted even then (``binary_form`` alone would hand back an unverified one)."""
    if sock.context.verify_mode == ssl.CERT_NONE:
        return None
    try:
        peer = sock.getpeercert()
        der = sock.getpeercert(binary_form=True)
    except (ValueError, OSError):  # the connection is gone or its handshake never finished
        return None
    if not peer or not der:
        return None
    return ClientCertificate(_common_name(peer), hashlib.sha256(der).hexdigest())


def client_certificate(environ: dict[str, Any]) -> ClientCertificate | None:
    """The verified client certificate of this request, or None (plain HTTP, no server
    that exposes its socket, or no certificate)."""
    found = environ.get(ENVIRON_KEY, _ABSENT)
    if found is _ABSENT:
        sock = environ.get("gunicorn.socket")
        found = _verified(sock) if isinstance(sock, ssl.SSLSocket) else None
        environ[ENVIRON_KEY] = found
    return found  # type: ignore[return-value]
