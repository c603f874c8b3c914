"""The keep-alive client of deliveries and receipt pushes, against real local servers:
connections are reused, one the server closed is not written to, timeouts and refusals are
named, threads share the pool, HTTPS verifies the server, a forked child starts empty."""

from __future__ import annotations

import base64
import contextlib
import http.client
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import pytest

from adapters.http_client import HttpClient, HttpError, HttpTimeout
from adapters.transport import HttpTransport
from gateway.domain.errors import RetryableAuthorityError, TerminalAuthorityError
from tests.tls_certs import CertAuthority


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    connections = 0
    bodies: list[bytes]
    close_after = False  # answer "Connection: close"
    hang_up_idle = False  # close each connection after its answer, without saying so
    delay = 0.0
    status = 200

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # a client that timed out and left: the test asserts on the client's side


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self.server.bodies.append(body)
        time.sleep(self.server.delay)
        answer = b'{"echo":%d}' % len(body)
        self.send_response(self.server.status)
        self.send_header("Content-Length", str(len(answer)))
        if self.server.close_after:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(answer)
        if self.server.hang_up_idle:
            self.close_connection = True

    def log_message(self, *args: object) -> None:
        pass


def _serve(context: ssl.SSLContext | None = None) -> _Server:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.bodies = []
    if context is not None:
        server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def make() -> Iterator[Callable[..., HttpClient]]:
    """HttpClient(...), closed after the test (no socket left to the collector)."""
    made: list[HttpClient] = []

    def new(*args: Any, **kwargs: Any) -> HttpClient:
        made.append(HttpClient(*args, **kwargs))
        return made[-1]

    yield new
    for client in made:
        client.close()


@pytest.fixture
def server() -> Iterator[_Server]:
    s = _serve()
    yield s
    s.shutdown()
    s.server_close()


def _url(s: _Server, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{s.server_address[1]}/customs/dxp?x=1"


def test_posts_reuse_one_connection(server: _Server, make: Callable[..., HttpClient]) -> None:
    client = make(2.0, 2.0)
    answers = [
        client.post(_url(server), b"a" * n, {"Content-Type": "application/xml"}) for n in (1, 2, 3)
    ]
    assert [(r.status, r.body) for r in answers] == [(200, b'{"echo":%d}' % n) for n in (1, 2, 3)]
    assert server.connections == 1
    assert server.bodies == [b"a", b"aa", b"aaa"]
    assert client.idle_connections() == 1


def test_connection_close_is_not_pooled(server: _Server, make: Callable[..., HttpClient]) -> None:
    server.close_after = True
    client = make(2.0, 2.0)
    for _ in range(3):
        assert client.post(_url(server), b"x", {}).status == 200
    assert server.connections == 3
    assert client.idle_connections() == 0


def test_a_connection_the_server_closed_while_idle_is_not_written_to(
    server: _Server, make: Callable[..., HttpClient]
) -> None:
    """The server hangs up after each answer without a Connection: close header (as a
    server does whose keep-alive ran out): the next request goes on a new connection and
    succeeds, instead of failing on the dead one."""
    server.hang_up_idle = True
    client = make(2.0, 2.0)
    for n in range(3):
        time.sleep(0.05)  # the server's FIN has arrived
        assert client.post(_url(server), b"y" * (n + 1), {}).status == 200
    assert server.connections == 3
    assert server.bodies == [b"y", b"yy", b"yyy"]


def test_a_slow_answer_is_a_read_timeout(server: _Server, make: Callable[..., HttpClient]) -> None:
    server.delay = 1.0
    client = make(2.0, 0.2)
    started = time.monotonic()
    with pytest.raises(HttpTimeout) as caught:
        client.post(_url(server), b"z", {})
    assert caught.value.kind == "ReadTimeout"
    assert time.monotonic() - started < 0.9
    assert client.idle_connections() == 0  # a timed-out connection is not reused


def test_nobody_listening_is_a_connect_error(make: Callable[..., HttpClient]) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(HttpError) as caught:
        make(1.0, 1.0).post(f"http://127.0.0.1:{port}/x", b"", {})
    assert caught.value.kind == "ConnectError"


def test_a_peer_that_speaks_no_http_is_a_protocol_error(make: Callable[..., HttpClient]) -> None:
    listener = socket.create_server(("127.0.0.1", 0))

    def garbage() -> None:
        conn, _ = listener.accept()
        conn.recv(65536)
        conn.sendall(b"SSH-2.0-not-http\r\n\r\n")
        conn.close()

    threading.Thread(target=garbage, daemon=True).start()
    with pytest.raises(HttpError) as caught:
        make(1.0, 1.0).post(f"http://127.0.0.1:{listener.getsockname()[1]}/x", b"q", {})
    listener.close()
    assert caught.value.kind == "RemoteProtocolError"


def test_not_an_http_url_is_refused_before_connecting(make: Callable[..., HttpClient]) -> None:
    with pytest.raises(HttpError) as caught:
        make(1.0, 1.0).post("ftp://127.0.0.1/x", b"", {})
    assert caught.value.kind == "UnsupportedProtocol"


def test_threads_share_the_pool(server: _Server, make: Callable[..., HttpClient]) -> None:
    server.delay = 0.02
    client = make(2.0, 2.0, max_idle=4)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(
            pool.map(lambda i: client.post(_url(server), b"%d" % i, {}).status, range(64))
        )
    assert statuses == [200] * 64
    assert sorted(server.bodies) == sorted(b"%d" % i for i in range(64))
    assert server.connections <= 8 + 64 // 4  # reused, not one per request
    assert client.idle_connections() <= 4


def test_https_verifies_the_server(tmp_path: Path, make: Callable[..., HttpClient]) -> None:
    ca = CertAuthority.create(tmp_path, "http-client")
    issued = ca.issue("server", "127.0.0.1", server=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(issued.cert, issued.key)
    s = _serve(context)
    try:
        trusting = make(2.0, 2.0, ssl_context=ssl.create_default_context(cafile=ca.bundle))
        assert trusting.post(_url(s, "https"), b"tls", {}).body == b'{"echo":3}'
        assert trusting.post(_url(s, "https"), b"tls!", {}).status == 200
        assert s.connections == 1
        with pytest.raises(HttpError) as caught:  # the default roots do not know our CA
            make(2.0, 2.0).post(_url(s, "https"), b"tls", {})
        assert caught.value.kind == "ConnectError"
    finally:
        s.shutdown()
        s.server_close()


def test_a_forked_child_starts_with_an_empty_pool(
    server: _Server, make: Callable[..., HttpClient]
) -> None:
    client = make(2.0, 2.0)
    client.post(_url(server), b"parent", {})
    assert client.idle_connections() == 1
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: nothing inherited, and its own request works
        try:
            ok = (
                client.idle_connections() == 0
                and client.post(_url(server), b"child", {}).status == 200
            )
            os.write(write, b"1" if ok else b"0")
        finally:
            os._exit(0)
    os.waitpid(pid, 0)
    assert os.read(read, 1) == b"1"
    assert client.post(_url(server), b"parent again", {}).status == 200  # the parent's still works
    assert server.connections == 2
    assert server.bodies == [b"parent", b"child", b"parent again"]


def test_the_transport_maps_answers_to_retryable_or_terminal(
    server: _Server, request: pytest.FixtureRequest
) -> None:
    transport = HttpTransport(1.0, 1.0)
    request.addfinalizer(transport.close)
    assert transport.post(_url(server), b"ok", {}).body == b'{"echo":2}'
    server.status = 503
    with pytest.raises(RetryableAuthorityError, match="answered 503"):
        transport.post(_url(server), b"x", {})
    server.status = 400
    with pytest.raises(TerminalAuthorityError, match="refused the message \\(400\\)"):
        transport.post(_url(server), b"x", {})
    server.status, server.delay = 200, 1.5
    with pytest.raises(RetryableAuthorityError, match=r"timeout talking to .*: ReadTimeout"):
        transport.post(_url(server), b"x", {})


class _ForwardProxy(BaseHTTPRequestHandler):
    """A plain-HTTP forward proxy: takes the absolute URL, asks the server, passes the answer
    back; records what it was asked (and the credentials it was shown)."""

    protocol_version = "HTTP/1.1"
    seen: ClassVar[list[tuple[str, str | None]]] = []

    def do_POST(self) -> None:
        _ForwardProxy.seen.append((self.path, self.headers.get("Proxy-Authorization")))
        body = self.rfile.read(int(self.headers["Content-Length"]))
        parts = urlsplit(self.path)
        upstream = http.client.HTTPConnection(parts.hostname, parts.port, timeout=5)
        upstream.request("POST", parts.path + (f"?{parts.query}" if parts.query else ""), body)
        answer = upstream.getresponse()
        data = answer.read()
        upstream.close()
        self.send_response(answer.status)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


def _connect_proxy(seen: list[bytes]) -> socket.socket:
    """A CONNECT proxy: opens the tunnel asked for and pipes bytes both ways."""
    listener = socket.create_server(("127.0.0.1", 0))

    def pipe(a: socket.socket, b: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := a.recv(65536):
                b.sendall(data)
        with contextlib.suppress(OSError):
            b.shutdown(socket.SHUT_WR)

    def serve() -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            head = b""
            while b"\r\n\r\n" not in head:
                head += client.recv(4096)
            seen.append(head)
            host, _, port = head.split()[1].decode().partition(":")
            upstream = socket.create_connection((host, int(port)))
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
            threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()

    threading.Thread(target=serve, daemon=True).start()
    return listener


def test_plain_http_goes_through_the_environments_proxy(
    server: _Server, make: Callable[..., HttpClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    proxy = _Server(("127.0.0.1", 0), _ForwardProxy)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    _ForwardProxy.seen = []
    try:
        monkeypatch.setenv(
            "HTTP_PROXY", f"http://broker:s%40cret@127.0.0.1:{proxy.server_address[1]}"
        )
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        answer = make(2.0, 2.0).post(_url(server), b"via", {})
        assert (answer.status, answer.body) == (200, b'{"echo":3}')
        assert _ForwardProxy.seen == [
            (_url(server), "Basic " + base64.b64encode(b"broker:s@cret").decode())
        ]
        monkeypatch.setenv("NO_PROXY", "127.0.0.1")  # bypassed: straight to the server
        assert make(2.0, 2.0).post(_url(server), b"direct", {}).status == 200
        assert len(_ForwardProxy.seen) == 1
        assert server.bodies == [b"via", b"direct"]
    finally:
        proxy.shutdown()
        proxy.server_close()


def test_https_is_tunnelled_through_the_proxy(
    tmp_path: Path, make: Callable[..., HttpClient]
) -> None:
    ca = CertAuthority.create(tmp_path, "http-client-proxy")
    issued = ca.issue("server", "127.0.0.1", server=True)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(issued.cert, issued.key)
    s = _serve(context)
    seen: list[bytes] = []
    listener = _connect_proxy(seen)
    try:
        client = make(
            2.0,
            2.0,
            ssl_context=ssl.create_default_context(cafile=ca.bundle),
            proxies={"https": f"http://127.0.0.1:{listener.getsockname()[1]}"},
        )
        assert client.post(_url(s, "https"), b"tunnelled", {}).body == b'{"echo":9}'
        assert client.post(_url(s, "https"), b"again", {}).status == 200  # the same tunnel
        assert len(seen) == 1
        assert seen[0].startswith(f"CONNECT 127.0.0.1:{s.server_address[1]} ".encode())
        assert s.bodies == [b"tunnelled", b"again"]
    finally:
        listener.close()
        s.shutdown()
        s.server_close()


def test_a_proxy_that_is_down_is_a_connect_error_naming_it(make: Callable[..., HttpClient]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = make(1.0, 1.0, proxies={"http": f"127.0.0.1:{port}"})
    with pytest.raises(HttpError) as caught:
        client.post("http://127.0.0.1:9/x", b"", {})
    assert caught.value.kind == "ConnectError"
    assert f"through the proxy 127.0.0.1:{port}" in str(caught.value)
