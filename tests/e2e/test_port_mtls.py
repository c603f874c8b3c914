"""T8, port mutual TLS: the product as `make run` starts it (a plain and a TLS gunicorn),
reached over real sockets with certificates made for this test (tests/tls_certs.py).

The six cases: the port's certificate is accepted; no certificate, another CA's and an
expired one are refused at the TLS handshake (the alert says which, and no HTTP byte comes
back); a valid certificate of someone else (customs, a broker) is a 403 problem; plain HTTP
to the port's endpoint is a 401 problem while GATEWAY_PORT_MTLS_REQUIRED is on. A refused
event is never applied: the same event sent afterwards by the port counts as new.
"""

from __future__ import annotations

import socket
import ssl
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from gateway.settings import Settings, load_settings
from tests.e2e.stack import Stack, free_port, start_stack
from tests.integration.test_clearance_engine import _arrival
from tests.tls_certs import CertAuthority, Issued

XML = {"Content-Type": "application/xml"}
PORT_EVENTS = "/api/v1/port/events"
PROBLEM = "urn:single-window:problem:"


@dataclass(frozen=True)
class World:
    stack: Stack
    settings: Settings  # the stack's, for signing port messages with the sandbox port's key
    tls_port: int
    server_ca: Path
    clients: dict[str, Issued]

    @property
    def tls_base(self) -> str:
        return f"https://127.0.0.1:{self.tls_port}"

    def context(self, client: str | None) -> ssl.SSLContext:
        """A client's TLS context: trusts the gateway's server CA, presents ``client``."""
        ctx = ssl.create_default_context(cafile=self.server_ca)
        if client is not None:
            ctx.load_cert_chain(self.clients[client].cert, self.clients[client].key)
        return ctx

    def over_tls(self, client: str) -> httpx.Client:
        return httpx.Client(base_url=self.tls_base, verify=self.context(client), timeout=10)

    def arrival(self) -> tuple[str, bytes]:
        """A fresh signed arrival (its logisticsNo, its envelope), as the port sends it."""
        logistics_no = "LN-MTLS-" + uuid.uuid4().hex[:12]
        return logistics_no, _arrival(self.settings, logistics_no)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    certs = tmp_path_factory.mktemp("certs")
    server_ca = CertAuthority.create(certs, "server")
    server = server_ca.issue("gateway-server", "127.0.0.1", server=True)
    clients_ca = CertAuthority.create(certs, "clients")
    stranger_ca = CertAuthority.create(certs, "stranger")
    defaults = load_settings(env={})
    clients = {
        "port": clients_ca.issue("port", defaults.port_dxp_id),
        "expired port": clients_ca.issue("port-expired", defaults.port_dxp_id, expired=True),
        "port of another CA": stranger_ca.issue("port-stranger", defaults.port_dxp_id),
        "customs": clients_ca.issue("customs", defaults.customs_dxp_id),
        "broker": clients_ca.issue("broker", defaults.demo_org_dxp_id),
    }
    tls_port = free_port()
    data_dir = tmp_path_factory.mktemp("mtls-stack")
    stack = start_stack(
        data_dir,
        GATEWAY_TLS_PORT=str(tls_port),
        GATEWAY_TLS_CERT=str(server.cert),
        GATEWAY_TLS_KEY=str(server.key),
        GATEWAY_TLS_CLIENT_CA=str(clients_ca.bundle),
        GATEWAY_PORT_MTLS_REQUIRED="true",
        GATEWAY_PORT_MESSAGE_TYPES="",  # nothing goes to the sandbox port: no pushes of its own
    )
    try:
        yield World(
            stack,
            load_settings(env={}, data_dir=str(data_dir)),
            tls_port,
            server_ca.bundle,
            clients,
        )
    finally:
        stack.stop()
    assert "Traceback" not in stack.log(), stack.log()[-3000:]


def _refused_at_handshake(world: World, client: str | None) -> ssl.SSLError:
    """Connect with ``client``'s certificate (or none) and read: the gateway's verdict on a
    client certificate is a TLS alert (in TLS 1.3 it comes right after the client's
    Finished, so the read receives it), never an HTTP answer."""
    with (
        socket.create_connection(("127.0.0.1", world.tls_port), timeout=10) as raw,
        pytest.raises(ssl.SSLError) as refused,
        world.context(client).wrap_socket(raw, server_hostname="127.0.0.1") as tls,
    ):
        tls.recv(1)
    return refused.value


def _applied(world: World, body: bytes) -> dict:  # type: ignore[type-arg]
    with world.over_tls("port") as client:
        resp = client.post(PORT_EVENTS, content=body, headers=XML)
    assert resp.status_code == 200, resp.text
    return resp.json()  # type: ignore[no-any-return]


def test_the_ports_certificate_is_accepted(world: World):
    logistics_no, body = world.arrival()
    assert _applied(world, body) == {"applied": 1, "duplicates": 0, "unmatched": [logistics_no]}
    assert _applied(world, body)["duplicates"] == 1  # the same event again: acknowledged


def test_a_client_without_a_certificate_is_refused_at_the_handshake(world: World):
    refused = _refused_at_handshake(world, None)
    assert refused.reason == "TLSV13_ALERT_CERTIFICATE_REQUIRED", refused


def test_a_certificate_from_another_ca_is_refused_at_the_handshake(world: World):
    refused = _refused_at_handshake(world, "port of another CA")
    assert refused.reason == "TLSV1_ALERT_UNKNOWN_CA", refused


def test_an_expired_certificate_is_refused_at_the_handshake(world: World):
    refused = _refused_at_handshake(world, "expired port")
    assert refused.reason == "SSLV3_ALERT_CERTIFICATE_EXPIRED", refused


@pytest.mark.parametrize("someone_else", ["customs", "broker"])
def test_a_valid_certificate_that_is_not_the_ports_is_a_403_problem(
    world: World, someone_else: str
):
    _, body = world.arrival()
    with world.over_tls(someone_else) as client:
        resp = client.post(PORT_EVENTS, content=body, headers=XML)
        assert client.get("/healthz").status_code == 200  # the certificate is good elsewhere
    assert resp.status_code == 403
    assert resp.headers["Content-Type"] == "application/problem+json"
    problem = resp.json()
    assert problem["type"] == PROBLEM + "client-certificate-refused"
    assert len(problem["certificate_sha256"]) == 64
    assert _applied(world, body)["applied"] == 1  # the refused event was not applied


def test_plain_http_to_the_port_endpoint_is_a_401_problem_while_mtls_is_required(
    world: World,
):
    _, body = world.arrival()
    with httpx.Client(base_url=world.stack.base, timeout=10) as plain:
        resp = plain.post(PORT_EVENTS, content=body, headers=XML)
        # The authorities' receipts have their own switch (off here): still served over HTTP.
        receipt = plain.post("/api/v1/receipts", content=b"<x/>", headers=XML)
    assert resp.status_code == 401
    assert resp.headers["Content-Type"] == "application/problem+json"
    assert resp.json()["type"] == PROBLEM + "client-certificate-required"
    assert receipt.status_code == 400
    assert _applied(world, body)["applied"] == 1  # refused over HTTP, applied over mTLS
