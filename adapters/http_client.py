"""A keep-alive HTTP/1.1 client on the standard library, for the paths that POST one small
message after another to the same few origins: deliveries to the authorities, and the
sandbox authorities' receipt pushes.

httpx spent about 1 ms of CPU per POST on loopback, http.client on a kept-alive connection
about 0.2 ms; at three or four POSTs per declaration that was a tenth of the machine. What
httpx gave beyond http.client and is kept here: a pool of connections per origin shared by
threads, separate connect and read timeouts, and idle connections the server has closed
dropped before use (an idle socket that is readable has seen EOF), not written to, and the
environment's proxies (``HTTP_PROXY``, ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``, read
when the client is made): plain HTTP through the proxy, HTTPS tunnelled with CONNECT.
"""

from __future__ import annotations

import http.client
import os
import select
import socket
import ssl
import threading
from base64 import b64encode
from dataclasses import dataclass
from email.message import Message
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment
from weakref import WeakSet

MAX_BODY = 8 * 1024 * 1024  # an answer longer than this is refused (answers are short)


class HttpError(Exception):
    """The exchange failed; ``kind`` names how (httpx's names, which logs already show)."""

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


class HttpTimeout(HttpError):
    """A connect or read timeout."""


@dataclass(frozen=True)
class Response:
    status: int
    body: bytes
    headers: Message

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


_Origin = tuple[str, str, int]


@dataclass(frozen=True)
class Proxy:
    """An HTTP proxy: where it listens, and the Proxy-Authorization its URL's user gives."""

    host: str
    port: int
    authorization: str | None = None

    @classmethod
    def from_url(cls, url: str) -> Proxy:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme != "http" or not parts.hostname:
            raise HttpError("UnsupportedProtocol", f"only http:// proxies are supported: {url!r}")
        auth = None
        if parts.username is not None:
            pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
            auth = "Basic " + b64encode(pair.encode()).decode("ascii")
        return cls(parts.hostname, parts.port or 80, auth)


_CLIENTS: WeakSet[HttpClient] = WeakSet()


class HttpClient:
    """POSTs with pooled keep-alive connections; safe to share between threads (each
    connection serves one request at a time)."""

    def __init__(
        self,
        connect_timeout: float,
        read_timeout: float,
        *,
        max_idle: int = 8,
        ssl_context: ssl.SSLContext | None = None,
        proxies: dict[str, str] | None = None,
    ) -> None:
        """``proxies``: by scheme (``all``, and ``no`` for the hosts to bypass), as the
        standard library reads them from the environment (the default)."""
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.max_idle = max_idle
        self._ssl = ssl_context
        self._proxies = getproxies_environment() if proxies is None else proxies
        self._idle: dict[_Origin, list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._closed = False
        _CLIENTS.add(self)

    def post(self, url: str, body: bytes, headers: dict[str, str]) -> Response:
        """Send ``body``; the answer whatever its status. Raises HttpTimeout or HttpError."""
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise HttpError("UnsupportedProtocol", f"not an http(s) URL: {url!r}")
        default_port = 443 if parts.scheme == "https" else 80
        origin = (parts.scheme, parts.hostname, parts.port or default_port)
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        proxy = self._proxy_for(origin)
        if proxy is not None and parts.scheme == "http":  # the proxy is told the whole URL
            target = f"http://{parts.netloc.rpartition('@')[2]}{target}"
            if proxy.authorization:
                headers = {**headers, "Proxy-Authorization": proxy.authorization}
        conn = self._take(origin) or self._connect(origin, proxy)
        try:
            conn.request("POST", target, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read(MAX_BODY + 1)
        except TimeoutError as exc:
            conn.close()
            raise HttpTimeout("ReadTimeout", str(exc) or "no answer in time") from None
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise HttpError(_read_kind(exc), str(exc) or type(exc).__name__) from None
        if len(data) > MAX_BODY:
            conn.close()
            raise HttpError("ReadError", f"answer longer than {MAX_BODY} bytes")
        if resp.will_close:
            conn.close()
        else:
            self._give_back(origin, conn)
        return Response(resp.status, data, resp.headers)

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for conns in idle.values():
            for conn in conns:
                conn.close()

    def idle_connections(self) -> int:
        """How many connections wait in the pool (for tests and metrics)."""
        with self._lock:
            return sum(len(c) for c in self._idle.values())

    def _take(self, origin: _Origin) -> http.client.HTTPConnection | None:
        """An idle connection to ``origin`` the server has not closed, if any."""
        while True:
            with self._lock:
                pool = self._idle.get(origin)
                if not pool:
                    return None
                conn = pool.pop()
            if _usable(conn):
                return conn
            conn.close()

    def _give_back(self, origin: _Origin, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            pool = self._idle.setdefault(origin, [])
            if not self._closed and len(pool) < self.max_idle:
                pool.append(conn)
                return
        conn.close()

    def _proxy_for(self, origin: _Origin) -> Proxy | None:
        scheme, host, port = origin
        url = self._proxies.get(scheme) or self._proxies.get("all")
        if not url or proxy_bypass_environment(f"{host}:{port}", self._proxies):
            return None
        return Proxy.from_url(url)

    def _connect(self, origin: _Origin, proxy: Proxy | None) -> http.client.HTTPConnection:
        scheme, host, port = origin
        # Through a proxy, the socket goes to the proxy; HTTPS then asks it for a tunnel.
        at_host, at_port = (proxy.host, proxy.port) if proxy is not None else (host, port)
        where = f"{host}:{port}" + (f" (through the proxy {at_host}:{at_port})" if proxy else "")
        conn: http.client.HTTPConnection
        if scheme == "https":
            with self._lock:  # loading the roots takes tens of ms: once per client
                if self._ssl is None:
                    self._ssl = default_ssl_context()
                context = self._ssl
            conn = http.client.HTTPSConnection(
                at_host, at_port, timeout=self.connect_timeout, context=context
            )
            if proxy is not None:
                auth = {"Proxy-Authorization": proxy.authorization} if proxy.authorization else {}
                conn.set_tunnel(host, port, headers=auth)
        else:
            conn = http.client.HTTPConnection(at_host, at_port, timeout=self.connect_timeout)
        try:
            conn.connect()
        except TimeoutError:
            conn.close()
            raise HttpTimeout("ConnectTimeout", f"{where} did not answer in time") from None
        except OSError as exc:  # refused, unreachable, TLS refused, or the tunnel refused
            conn.close()
            raise HttpError("ConnectError", f"{where}: {exc}") from None
        assert conn.sock is not None
        conn.sock.settimeout(self.read_timeout)
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn


def _forget_inherited_connections() -> None:
    """A forked child (an rq work horse) must not write to its parent's sockets, nor wait on
    a lock another thread of the parent held at the fork: it starts with an empty pool."""
    for client in list(_CLIENTS):
        client._idle, client._lock = {}, threading.Lock()


os.register_at_fork(after_in_child=_forget_inherited_connections)


def _usable(conn: http.client.HTTPConnection) -> bool:
    """An idle keep-alive socket has nothing to read; readable means the server closed it
    (or broke the protocol): either way it must not carry the next request."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        poller = select.poll()
        poller.register(sock, select.POLLIN)
        return not poller.poll(0)
    except (OSError, ValueError):
        return False


def _read_kind(exc: BaseException) -> str:
    """A peer that hung up or spoke no HTTP is a protocol error, anything else a read error."""
    closed = (http.client.HTTPException, ConnectionResetError, BrokenPipeError)
    return "RemoteProtocolError" if isinstance(exc, closed) else "ReadError"


def default_ssl_context() -> ssl.SSLContext:
    """Verify servers against certifi's roots, as httpx did (the system's may differ)."""
    try:
        import certifi
    except ImportError:  # pragma: no cover - certifi is pinned in requirements.txt
        return ssl.create_default_context()
    return ssl.create_default_context(cafile=certifi.where())
