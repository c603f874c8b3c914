"""HTTP transport to an authority: timeouts, and errors mapped to retryable or terminal.

Retrying (with backoff and jitter) is the delivery job's business, since the database is the
record of attempts; this layer only says whether a retry can help.
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from gateway.domain.errors import RetryableAuthorityError, TerminalAuthorityError


@dataclass(frozen=True)
class TransportResponse:
    status: int
    body: bytes


class HttpTransport:
    """POSTs bytes with bounded connect/read timeouts; one pooled client per process."""

    def __init__(self, connect_timeout: float, read_timeout: float) -> None:
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._client = httpx.Client(timeout=timeout)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> TransportResponse:
        """Send; raise RetryableAuthorityError or TerminalAuthorityError on failure."""
        try:
            resp = self._client.post(url, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise RetryableAuthorityError(
                f"timeout talking to {url}: {type(exc).__name__}"
            ) from None
        except httpx.HTTPError as exc:
            raise RetryableAuthorityError(f"cannot reach {url}: {type(exc).__name__}") from None
        if resp.status_code in (408, 425, 429) or resp.status_code >= 500:
            raise RetryableAuthorityError(f"{url} answered {resp.status_code}: {resp.text[:200]}")
        if resp.status_code >= 400:
            raise TerminalAuthorityError(
                f"{url} refused the message ({resp.status_code}): {resp.text[:500]}"
            )
        return TransportResponse(resp.status_code, resp.content)

    def close(self) -> None:
        self._client.close()
