"""HTTP transport to an authority: timeouts, and errors mapped to retryable or terminal.

Retrying (with backoff and jitter) is the delivery job's business, since the database is the
record of attempts; this layer only says whether a retry can help.
"""

from __future__ import annotations

from dataclasses import dataclass

from adapters.http_client import HttpClient, HttpError, HttpTimeout
from gateway.domain.errors import RetryableAuthorityError, TerminalAuthorityError


@dataclass(frozen=True)
class TransportResponse:
    status: int
    body: bytes


class HttpTransport:
    """POSTs bytes with bounded connect/read timeouts; one pooled client per process (its
    connections kept alive for the next delivery; ``max_idle`` is the most it keeps)."""

    def __init__(self, connect_timeout: float, read_timeout: float, max_idle: int = 8) -> None:
        self._client = HttpClient(connect_timeout, read_timeout, max_idle=max_idle)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> TransportResponse:
        """Send; raise RetryableAuthorityError or TerminalAuthorityError on failure."""
        try:
            resp = self._client.post(url, body, headers)
        except HttpTimeout as exc:
            raise RetryableAuthorityError(f"timeout talking to {url}: {exc.kind}") from None
        except HttpError as exc:
            raise RetryableAuthorityError(f"cannot reach {url}: {exc.kind}") from None
        if resp.status in (408, 425, 429) or resp.status >= 500:
            raise RetryableAuthorityError(f"{url} answered {resp.status}: {resp.text[:200]}")
        if resp.status >= 400:
            raise TerminalAuthorityError(
                f"{url} refused the message ({resp.status}): {resp.text[:500]}"
            )
        return TransportResponse(resp.status, resp.body)

    def close(self) -> None:
        self._client.close()
