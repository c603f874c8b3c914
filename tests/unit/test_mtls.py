"""T8, port mutual TLS without sockets: who each signed endpoint takes, the TLS settings
refused at start when they cannot make a listener, and a socket that verified nothing
never counts as a client certificate (the handshakes themselves: tests/e2e/test_port_mtls.py).
"""

from __future__ import annotations

import ssl
from dataclasses import replace
from pathlib import Path

import pytest

from gateway.api.client_cert import ClientCertificate, client_certificate
from gateway.api.mtls import admit, rules
from gateway.domain.errors import ClientCertificateRefused, ClientCertificateRequired
from gateway.settings import Settings, load_settings
from gateway.tls_listener import TlsSettingsError, tls_listener
from tests.tls_certs import CertAuthority


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(env={}, data_dir=str(tmp_path))


def _cert(cn: str) -> ClientCertificate:
    return ClientCertificate(cn, "ab" * 32)


def test_the_port_endpoint_takes_only_the_ports_certificate(settings: Settings):
    port = rules(replace(settings, port_mtls_required=True))["port_events"]
    admit(port, _cert(settings.port_dxp_id))
    for other in (settings.customs_dxp_id, settings.demo_org_dxp_id, "", "DXPPORT0000000019"):
        with pytest.raises(ClientCertificateRefused):
            admit(port, _cert(other))
    with pytest.raises(ClientCertificateRequired):
        admit(port, None)


def test_receipts_take_any_authoritys_certificate_and_their_own_switch(settings: Settings):
    receipts = rules(replace(settings, port_mtls_required=True))["receipts"]
    for authority in (settings.customs_dxp_id, settings.inspection_dxp_id, settings.port_dxp_id):
        admit(receipts, _cert(authority))
    admit(receipts, None)  # port_mtls_required does not cover receipts
    with pytest.raises(ClientCertificateRefused):
        admit(receipts, _cert(settings.demo_org_dxp_id))
    required = rules(replace(settings, authority_mtls_required=True))["receipts"]
    with pytest.raises(ClientCertificateRequired):
        admit(required, None)


def test_without_the_switches_a_certificate_is_optional_but_still_checked(settings: Settings):
    port = rules(settings)["port_events"]
    admit(port, None)
    with pytest.raises(ClientCertificateRefused):
        admit(port, _cert(settings.customs_dxp_id))


def test_the_refusals_are_problem_types_of_401_and_403():
    assert (ClientCertificateRequired.status, ClientCertificateRefused.status) == (401, 403)
    assert ClientCertificateRequired.type_slug == "client-certificate-required"
    assert ClientCertificateRefused.type_slug == "client-certificate-refused"


def test_no_tls_settings_no_listener(settings: Settings):
    assert tls_listener(settings) is None


@pytest.mark.parametrize("switch", ["port_mtls_required", "authority_mtls_required"])
def test_mutual_tls_required_without_a_listener_is_refused_at_start(
    settings: Settings, switch: str
):
    with pytest.raises(TlsSettingsError, match=switch.upper()):
        tls_listener(replace(settings, **{switch: True}))


def test_a_partial_or_broken_tls_configuration_is_refused_at_start(
    settings: Settings, tmp_path: Path
):
    ca = CertAuthority.create(tmp_path / "certs", "clients")
    server = ca.issue("server", "127.0.0.1", server=True)
    with pytest.raises(TlsSettingsError, match="GATEWAY_TLS_CLIENT_CA"):
        tls_listener(replace(settings, tls_cert=str(server.cert), tls_key=str(server.key)))
    whole = replace(
        settings, tls_cert=str(server.cert), tls_key=str(server.key), tls_client_ca=str(ca.bundle)
    )
    other_key = ca.issue("other", "127.0.0.1", server=True).key
    with pytest.raises(TlsSettingsError, match="GATEWAY_TLS_KEY"):
        tls_listener(replace(whole, tls_key=str(other_key)))  # not the certificate's key
    with pytest.raises(TlsSettingsError, match="GATEWAY_TLS_CLIENT_CA"):
        tls_listener(replace(whole, tls_client_ca=str(tmp_path / "missing.crt")))
    with pytest.raises(TlsSettingsError, match="GATEWAY_TLS_PORT"):
        tls_listener(replace(whole, tls_port=whole.port))
    listener = tls_listener(whole)
    assert listener is not None
    options = listener.gunicorn_options()
    assert options[options.index("--cert-reqs") + 1] == str(int(ssl.CERT_REQUIRED))
    assert options[options.index("--ca-certs") + 1] == str(ca.bundle)


class _Socket(ssl.SSLSocket):
    """Only what client_certificate reads of a TLS socket: its context and its peer."""

    def __init__(self, verify: ssl.VerifyMode, peer: dict) -> None:  # type: ignore[type-arg]
        self._verify, self._peer = verify, peer

    @property
    def context(self) -> ssl.SSLContext:  # type: ignore[override]
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.verify_mode = self._verify
        return ctx

    def getpeercert(self, binary_form: bool = False):  # type: ignore[no-untyped-def]
        return b"0\x00" if binary_form else self._peer


def test_only_a_tls_socket_that_verified_its_peer_yields_a_certificate():
    subject = {"subject": ((("commonName", "DXPPORT000000001"),),)}
    assert client_certificate({}) is None  # no gunicorn socket (a test client, another server)
    assert client_certificate({"gunicorn.socket": object()}) is None  # plain HTTP
    # A listener that verifies nothing (--cert-reqs 0) hands over unverified bytes: refused.
    assert client_certificate({"gunicorn.socket": _Socket(ssl.CERT_NONE, subject)}) is None
    assert client_certificate({"gunicorn.socket": _Socket(ssl.CERT_REQUIRED, {})}) is None
    verified = client_certificate({"gunicorn.socket": _Socket(ssl.CERT_REQUIRED, subject)})
    assert verified is not None and verified.common_name == "DXPPORT000000001"
