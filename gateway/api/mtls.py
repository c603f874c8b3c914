"""Mutual TLS at the endpoints the port and the authorities call (their messages are signed,
not keyed): who may call each, by the client certificate the handshake verified.

The CA (``tls_client_ca``) vouches for who a caller is; which endpoint it may call is ours to
say. A certificate names its holder by its subject CN, the DXP id it sends under: the port's
events take only the port's, receipts only an authority's. A caller with a verified
certificate is always held to it (a mismatch is 403, whatever the switches); without one
it is refused (401) only where ``port_mtls_required`` / ``authority_mtls_required`` say so.
Refusals at the TLS level (no certificate, another CA, expired) never get this far: the
listener ends those at the handshake (gateway/tls_listener.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask, request

from gateway.api.client_cert import ClientCertificate, client_certificate
from gateway.domain.errors import ClientCertificateRefused, ClientCertificateRequired
from gateway.settings import Settings


@dataclass(frozen=True)
class CallerRule:
    """Who may call one endpoint: the DXP ids whose certificates it takes, and whether a
    call without a verified certificate is refused."""

    caller: str  # "the port", for the problem's wording
    dxp_ids: frozenset[str]
    required: bool


def rules(settings: Settings) -> dict[str, CallerRule]:
    """The rule of each signed endpoint, by its blueprint's name."""
    authorities = frozenset(
        {settings.customs_dxp_id, settings.inspection_dxp_id, settings.port_dxp_id}
    )
    return {
        "port_events": CallerRule(
            "the port", frozenset({settings.port_dxp_id}), settings.port_mtls_required
        ),
        "receipts": CallerRule("an authority", authorities, settings.authority_mtls_required),
    }


def admit(rule: CallerRule, cert: ClientCertificate | None) -> None:
    """Nothing when ``cert`` may call under ``rule``; else the typed refusal."""
    if cert is None:
        if rule.required:
            raise ClientCertificateRequired(
                f"This endpoint takes only {rule.caller}'s calls over mutual TLS: connect to "
                "the gateway's TLS listener with a client certificate."
            )
        return
    if cert.common_name not in rule.dxp_ids:
        raise ClientCertificateRefused(
            f"The client certificate is not {rule.caller}'s (its subject CN "
            f"{cert.common_name!r} is not a DXP id this endpoint takes).",
            extra={"certificate_sha256": cert.fingerprint},
        )


def init_app(app: Flask, settings: Settings) -> None:
    """Check every call to a signed endpoint against its rule before the view reads it."""
    by_blueprint = rules(settings)

    def check() -> None:
        rule = by_blueprint.get(request.blueprint or "")
        if rule is not None:
            admit(rule, client_certificate(request.environ))

    app.before_request(check)
