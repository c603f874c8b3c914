"""The fault suite's TCP relay on its own, against tiny in-process upstreams: it must pass
bytes unchanged, and its blackhole must look like a partition (silence, then dead
connections), or the partition tests would prove nothing. No services needed."""

from __future__ import annotations

import contextlib
import hashlib
import http.client
import random
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import httpx
import pytest

from tests.faults.tcp_relay import TcpRelay

BIG = random.Random(7).randbytes(2 * 1024 * 1024)
TIMEOUT = httpx.Timeout(5.0)
PARTITIONED = httpx.Timeout(2.0, read=0.5)


class _Upstream(ThreadingHTTPServer):
    """An HTTP/1.1 keep-alive server that records every request it sees."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.seen: list[tuple[str, str, int]] = []  # method, path, client port
        self.seen_lock = threading.Lock()

    def paths(self) -> list[str]:
        with self.seen_lock:
            return [path for _, path, _ in self.seen]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = 64 * 1024  # headers and body in one write: no 40 ms Nagle/delayed-ACK stall
    server: _Upstream

    def _record(self) -> None:
        with self.server.seen_lock:
            self.server.seen.append((self.command, self.path, self.client_address[1]))

    def _answer(self, body: bytes, **headers: str) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        self._record()
        self._answer(BIG if self.path == "/big" else f"ok {self.path}".encode())

    def do_POST(self) -> None:
        self._record()
        body = self.rfile.read(int(self.headers["Content-Length"]))
        self._answer(body, **{"X-Sha256": hashlib.sha256(body).hexdigest()})

    def log_message(self, format: str, *args: object) -> None:
        pass


class _Echo(socketserver.ThreadingTCPServer):
    """Echoes until EOF, then closes: exercises the relay's half-close handling."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _EchoHandler)


class _EchoHandler(socketserver.BaseRequestHandler):
    request: socket.socket

    def handle(self) -> None:
        while data := self.request.recv(65536):
            self.request.sendall(data)


@contextlib.contextmanager
def _serve(server: socketserver.BaseServer) -> Iterator[None]:
    """Serve in a thread, then shut down and close, whatever the test did."""
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _address(server: socketserver.TCPServer) -> tuple[str, int]:
    return "127.0.0.1", int(server.server_address[1])


@pytest.fixture
def upstream() -> Iterator[_Upstream]:
    server = _Upstream()
    with _serve(server):
        yield server


@pytest.fixture
def relay(upstream: _Upstream) -> Iterator[TcpRelay]:
    with TcpRelay(_address(upstream)) as relay:
        yield relay


def _relay_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("tcp-relay")]


def _wait_healed(relay: TcpRelay) -> None:
    deadline = time.monotonic() + 1.5
    while relay.blackholed() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not relay.blackholed()
    time.sleep(0.1)  # the relay's own wake-up at the end of the blackhole


def _get(sock: socket.socket, path: str) -> bytes:
    """One keep-alive GET on a raw socket we keep hold of; returns the body."""
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: relay\r\n\r\n".encode())
    resp = http.client.HTTPResponse(sock)
    try:
        resp.begin()
        assert resp.status == 200
        return resp.read()
    finally:
        resp.close()


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


# ------------------------------------------------------------------ passing through


def test_a_large_exchange_arrives_byte_for_byte_both_ways(
    relay: TcpRelay, upstream: _Upstream
) -> None:
    body = random.Random(11).randbytes(2 * 1024 * 1024)
    resp = httpx.post(relay.url + "/echo", content=body, timeout=TIMEOUT)
    assert resp.status_code == 200
    assert resp.headers["X-Sha256"] == hashlib.sha256(body).hexdigest()
    assert resp.content == body
    resp = httpx.get(relay.url + "/big", timeout=TIMEOUT)
    assert resp.content == BIG
    assert upstream.paths() == ["/echo", "/big"]
    stats = relay.stats
    assert stats["bytes_up"] > len(body)
    assert stats["bytes_down"] > len(body) + len(BIG)


def test_a_half_close_is_passed_on_and_no_byte_is_lost() -> None:
    echo = _Echo()
    with _serve(echo), TcpRelay(_address(echo)) as relay:
        payload = random.Random(3).randbytes(2 * 1024 * 1024)
        with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:

            def send() -> None:
                sock.sendall(payload)
                sock.shutdown(socket.SHUT_WR)  # the echo only closes after our EOF

            sender = threading.Thread(target=send)
            sender.start()
            got = _read_all(sock)  # returns at EOF: the echo's close came through
            sender.join(5)
        assert got == payload
        assert relay.stats["bytes_up"] == relay.stats["bytes_down"] == len(payload)


def test_one_keep_alive_connection_carries_several_requests(
    relay: TcpRelay, upstream: _Upstream
) -> None:
    with httpx.Client(base_url=relay.url, timeout=TIMEOUT) as client:
        for i in range(5):
            assert client.get(f"/ka/{i}").text == f"ok /ka/{i}"
    assert relay.stats["accepted"] == 1
    assert len({port for _, _, port in upstream.seen}) == 1  # one upstream connection too
    # The client's close reached the upstream and back: the relay holds nothing more.
    deadline = time.monotonic() + 1
    while relay.stats["open"] and time.monotonic() < deadline:
        time.sleep(0.02)
    assert relay.stats["open"] == 0


def test_concurrent_clients_each_get_their_own_answers(
    relay: TcpRelay, upstream: _Upstream
) -> None:
    errors: list[str] = []
    tls = ssl.create_default_context()

    def client(n: int) -> None:
        try:
            # One TLS context for all: building one per client costs more than the test.
            with httpx.Client(base_url=relay.url, timeout=TIMEOUT, verify=tls) as c:
                for i in range(10):
                    body = f"{n}-{i}".encode() * 500
                    resp = c.post(f"/c/{n}/{i}", content=body)
                    if resp.content != body:
                        errors.append(f"client {n} request {i}: wrong body")
                    if c.get(f"/g/{n}/{i}").text != f"ok /g/{n}/{i}":
                        errors.append(f"client {n} request {i}: wrong GET answer")
        except httpx.HTTPError as exc:
            errors.append(f"client {n}: {exc!r}")

    threads = [threading.Thread(target=client, args=(n,)) for n in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert errors == []
    assert len(upstream.seen) == 20 * 10 * 2
    assert relay.stats["accepted"] == 20


def test_an_upstream_that_is_down_resets_the_client() -> None:
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[:2]
    with TcpRelay(dead) as relay, socket.create_connection(("127.0.0.1", relay.port)) as sock:
        sock.settimeout(2)
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(1) == b""
        assert relay.stats["upstream_failed"] == 1


# ------------------------------------------------------------------ the blackhole


def test_during_a_blackhole_a_new_request_times_out_and_never_arrives(
    relay: TcpRelay, upstream: _Upstream
) -> None:
    relay.blackhole(0.8)
    assert relay.blackholed()
    with pytest.raises((httpx.ReadTimeout, httpx.ConnectTimeout)):
        httpx.get(relay.url + "/during", timeout=PARTITIONED)
    _wait_healed(relay)
    assert "/during" not in upstream.paths()  # swallowed, not merely delayed
    assert httpx.get(relay.url + "/after", timeout=TIMEOUT).text == "ok /after"
    assert upstream.paths() == ["/after"]
    assert relay.stats["blackholed"] == 1


def test_a_connection_open_during_a_blackhole_is_silent_then_cut(
    relay: TcpRelay, upstream: _Upstream
) -> None:
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
        assert _get(sock, "/before") == b"ok /before"
        relay.blackhole(0.8)
        sock.sendall(b"GET /during HTTP/1.1\r\nHost: relay\r\n\r\n")
        sock.settimeout(0.4)
        with pytest.raises(TimeoutError):
            sock.recv(1)
        _wait_healed(relay)
        sock.settimeout(1)
        try:
            leftover = sock.recv(1)
        except ConnectionResetError:
            leftover = b""
        assert leftover == b"", "the connection outlived the blackhole"
    assert upstream.paths() == ["/before"]
    stats = relay.stats
    assert stats["blackholed"] == 1
    assert stats["cut"] == 1
    assert stats["bytes_swallowed"] > 0
    assert stats["open"] == 0


def test_a_pooled_client_recovers_after_the_blackhole(relay: TcpRelay, upstream: _Upstream) -> None:
    with httpx.Client(base_url=relay.url, timeout=TIMEOUT) as client:
        assert client.get("/before").status_code == 200
        relay.blackhole(0.8)
        _wait_healed(relay)
        assert client.get("/after").text == "ok /after"  # on a new connection
    assert relay.stats["cut"] == 1
    assert relay.stats["accepted"] == 2
    assert upstream.paths() == ["/before", "/after"]


def test_blackhole_zero_ends_a_blackhole_early(relay: TcpRelay, upstream: _Upstream) -> None:
    relay.blackhole(30)
    relay.blackhole(0)
    assert not relay.blackholed()
    assert httpx.get(relay.url + "/healed", timeout=TIMEOUT).text == "ok /healed"


# ------------------------------------------------------------------ stopping


def test_stop_closes_everything_and_leaves_no_thread(upstream: _Upstream) -> None:
    relay = TcpRelay(_address(upstream)).start()
    assert _relay_threads()
    with socket.create_connection(("127.0.0.1", relay.port), timeout=5) as sock:
        assert _get(sock, "/x") == b"ok /x"
        relay.stop()
        assert _relay_threads() == []
        sock.settimeout(1)
        with contextlib.suppress(ConnectionResetError):
            assert sock.recv(1) == b""
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", relay.port), timeout=1).close()
    relay.stop()  # twice is harmless
