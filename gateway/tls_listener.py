"""The gateway's mutual-TLS listener: where it listens, with which certificate, and which
CA its clients' certificates must come from; as the gunicorn options that serve it.

gunicorn applies its TLS settings to every address it binds, so the TLS listener is a
gunicorn of its own beside the plain one (the launcher starts both). ``--cert-reqs 2``
(``ssl.CERT_REQUIRED``) makes the handshake itself refuse a client without a certificate,
with one from another CA, or with an expired one: such a caller never reaches the app.
The certificate it did verify is read per request by gateway/api/client_cert.py.
"""

from __future__ import annotations

import ssl
from dataclasses import dataclass
from pathlib import Path

from gateway.settings import Settings

PIECES = ("tls_cert", "tls_key", "tls_client_ca")


class TlsSettingsError(ValueError):
    """The TLS settings cannot make a listener: say which, at start, not per connection."""


@dataclass(frozen=True)
class TlsListener:
    host: str
    port: int
    cert: Path
    key: Path
    client_ca: Path

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def gunicorn_options(self) -> list[str]:
        """What gunicorn needs to serve this listener (and only it)."""
        return [
            "--bind",
            f"{self.host}:{self.port}",
            "--certfile",
            str(self.cert),
            "--keyfile",
            str(self.key),
            "--ca-certs",
            str(self.client_ca),
            "--cert-reqs",
            str(int(ssl.CERT_REQUIRED)),
        ]

    def check(self) -> None:
        """Load what the listener will load, so a wrong path or a key that does not fit its
        certificate fails the start with the setting's name."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        try:
            context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise TlsSettingsError(
                f"GATEWAY_TLS_CERT / GATEWAY_TLS_KEY ({self.cert}, {self.key}): {exc}"
            ) from None
        try:
            context.load_verify_locations(cafile=self.client_ca)
        except (OSError, ssl.SSLError) as exc:
            raise TlsSettingsError(f"GATEWAY_TLS_CLIENT_CA ({self.client_ca}): {exc}") from None


def tls_listener(settings: Settings) -> TlsListener | None:
    """The configured listener, None when none is; TlsSettingsError for a partial set, or
    for mutual TLS required with no listener to provide it."""
    given = [name for name in PIECES if getattr(settings, name)]
    if not given:
        required = [
            f"GATEWAY_{name.upper()}"
            for name in ("port_mtls_required", "authority_mtls_required")
            if getattr(settings, name)
        ]
        if required:
            raise TlsSettingsError(
                f"{' and '.join(required)} need the TLS listener: set "
                + ", ".join(f"GATEWAY_{n.upper()}" for n in PIECES)
            )
        return None
    missing = [f"GATEWAY_{name.upper()}" for name in PIECES if name not in given]
    if missing:
        raise TlsSettingsError(f"the TLS listener also needs {', '.join(missing)}")
    if settings.tls_port == settings.port:
        raise TlsSettingsError("GATEWAY_TLS_PORT must differ from GATEWAY_PORT")
    listener = TlsListener(
        settings.host,
        settings.tls_port,
        settings.path(settings.tls_cert),
        settings.path(settings.tls_key),
        settings.path(settings.tls_client_ca),
    )
    listener.check()
    return listener
