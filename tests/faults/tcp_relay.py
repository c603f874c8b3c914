"""A TCP relay between the gateway's workers and the sandbox authorities that can fake a
network partition.

Killing the sandbox makes connections fail fast (refused, reset): the gateway sees an error
at once. A partition is different and nastier: connects may succeed, requests vanish, reads
hang until the client's timeout, and the connections that lived through it are dead when
the network comes back. The fault suite points the workers at this relay instead of the
sandbox so it can cut the network for a few seconds (``blackhole``) while the gateway and
the sandbox keep running; the relay lives in the test process and survives gateway
restarts.

One selector thread serves every connection: a few thousand short keep-alive requests over
minutes are nothing for it, and there is a single thread to stop.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import selectors
import socket
import struct
import threading
import time
from types import TracebackType

log = logging.getLogger(__name__)

_CHUNK = 64 * 1024
_HIGH_WATER = 4 * _CHUNK  # stop reading a side while this much waits for its peer
_LINGER_RST = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST
_CONNECTING = {errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY}
_STAT_KEYS = (
    "accepted",  # client connections accepted
    "bytes_up",  # client -> upstream, forwarded
    "bytes_down",  # upstream -> client, forwarded
    "bytes_swallowed",  # read during a blackhole and dropped, both directions
    "blackholed",  # connections open during, or accepted during, a blackhole
    "cut",  # of those, closed by the relay when the blackhole ended
    "upstream_failed",  # upstream connect failed: the client got a reset
)


class _End:
    """One socket of a pair, and the bytes waiting to be written to it."""

    __slots__ = ("connecting", "eof", "events", "out", "pair", "peer", "shut_wr", "sock")

    def __init__(self, sock: socket.socket, pair: _Pair, *, connecting: bool = False) -> None:
        self.sock = sock
        self.pair = pair
        self.peer: _End | None = None
        self.out = bytearray()
        self.connecting = connecting
        self.eof = False  # read EOF from this socket
        self.shut_wr = False  # we shut down writing to this socket
        self.events = 0  # what the selector watches for


class _Pair:
    """A client connection and its upstream connection (none if accepted in a blackhole)."""

    __slots__ = ("client", "closed", "tainted", "upstream")

    def __init__(self) -> None:
        self.client: _End
        self.upstream: _End | None = None
        self.tainted = False  # saw a blackhole: swallow everything, cut when it ends
        self.closed = False

    def ends(self) -> tuple[_End, ...]:
        return (self.client,) if self.upstream is None else (self.client, self.upstream)

    def done(self) -> bool:
        """Both sides closed their end and each was told: nothing more can pass."""
        up = self.upstream
        if self.tainted or up is None:
            return False  # a tainted pair waits for the end of the blackhole
        return self.client.eof and up.eof and self.client.shut_wr and up.shut_wr


class TcpRelay:
    """Forward TCP connections to ``upstream``, byte for byte, except during a blackhole.

    While a blackhole lasts, connections are still accepted but never reach the upstream,
    and nothing read on any connection is forwarded, either way. When it ends, every
    connection that saw it is reset, and new ones pass again. Use ``start()``/``stop()``
    or ``with TcpRelay(...) as relay``.
    """

    def __init__(self, upstream: tuple[str, int], host: str = "127.0.0.1", port: int = 0) -> None:
        self.upstream = upstream
        self.host = host
        self.port = port
        self._stats = dict.fromkeys(_STAT_KEYS, 0)
        self._lock = threading.Lock()
        self._until = 0.0  # time.monotonic() at which the blackhole ends
        self._epoch = 0  # bumped by each blackhole(): the loop taints every open pair
        self._seen_epoch = 0
        self._stopping = False
        self._pairs: set[_Pair] = set()
        self._tainted: set[_Pair] = set()
        self._thread: threading.Thread | None = None
        self._sel: selectors.BaseSelector | None = None
        self._listener: socket.socket | None = None
        self._wake_r: socket.socket | None = None
        self._wake_w: socket.socket | None = None
        self._family = socket.AF_INET
        self._upstream_addr: tuple[str, int] | tuple[str, int, int, int] = upstream

    # ------------------------------------------------------------------ public API

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def stats(self) -> dict[str, int]:
        """A snapshot of the counters (see _STAT_KEYS), plus ``open`` connections now."""
        snapshot = dict(self._stats)
        snapshot["open"] = len(self._pairs)
        return snapshot

    def start(self) -> TcpRelay:
        """Bind (``port`` 0: any free one, then read ``.port``) and serve in a thread."""
        if self._thread is not None:
            raise RuntimeError("TcpRelay already started")
        family, _, _, _, addr = socket.getaddrinfo(
            self.upstream[0], self.upstream[1], type=socket.SOCK_STREAM
        )[0]
        self._family, self._upstream_addr = family, addr
        listener = socket.create_server((self.host, self.port), backlog=1024)
        listener.setblocking(False)
        self.port = int(listener.getsockname()[1])
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._sel = selectors.DefaultSelector()
        self._sel.register(listener, selectors.EVENT_READ, None)
        self._sel.register(self._wake_r, selectors.EVENT_READ, None)
        self._listener = listener
        self._thread = threading.Thread(
            target=self._run, name=f"tcp-relay-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Close the listener and every connection, and wait for the thread to end."""
        thread = self._thread
        if thread is None:
            return
        self._stopping = True
        self._wake()
        thread.join(10)
        if thread.is_alive():
            raise RuntimeError(f"{thread.name} did not stop")

    def blackhole(self, seconds: float) -> None:
        """Partition the network from now for ``seconds`` (0 ends a running one early)."""
        with self._lock:
            now = time.monotonic()
            if seconds <= 0:
                self._until = min(self._until, now)
            else:
                self._until = now + seconds
                self._epoch += 1
        self._wake()

    def blackholed(self) -> bool:
        return time.monotonic() < self._until

    def __enter__(self) -> TcpRelay:
        return self if self._thread is not None else self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ------------------------------------------------------------------ the loop

    def _wake(self) -> None:
        if self._wake_w is not None:
            with contextlib.suppress(OSError):  # full (already woken) or closed
                self._wake_w.send(b"\0")

    def _run(self) -> None:
        assert self._sel is not None
        try:
            while not self._stopping:
                events = self._sel.select(self._timeout())
                self._housekeeping()
                for key, mask in events:
                    if key.fileobj is self._listener:
                        self._accept()
                    elif key.fileobj is self._wake_r:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                    else:
                        self._dispatch(key.data, mask)
        except Exception:
            log.exception("tcp relay on port %s crashed", self.port)
        finally:
            self._close_all()

    def _timeout(self) -> float | None:
        """Wake at the end of a blackhole, to cut the connections that saw it."""
        remaining = self._until - time.monotonic()
        if remaining > 0:
            return remaining
        return 0 if self._tainted else None

    def _housekeeping(self) -> None:
        if self._epoch != self._seen_epoch:
            self._seen_epoch = self._epoch
            for pair in self._pairs:
                self._taint(pair)
        if self._tainted and not self.blackholed():
            tainted, self._tainted = self._tainted, set()
            for pair in tainted:
                if not pair.closed:
                    self._stats["cut"] += 1
                    self._close(pair, reset=True)

    def _taint(self, pair: _Pair) -> None:
        if not pair.tainted:
            pair.tainted = True
            self._stats["blackholed"] += 1
            self._tainted.add(pair)
            for end in pair.ends():
                end.out.clear()

    def _accept(self) -> None:
        assert self._listener is not None
        for _ in range(64):
            try:
                sock, _addr = self._listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # e.g. EMFILE: leave it in the backlog for now
                log.warning("tcp relay accept failed: %s", exc)
                return
            self._stats["accepted"] += 1
            self._open(sock)

    def _open(self, sock: socket.socket) -> None:
        pair = _Pair()
        pair.client = _End(sock, pair)
        self._pairs.add(pair)
        try:
            sock.setblocking(False)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self.blackholed():
                self._taint(pair)  # accepted, but the upstream never hears of it
                self._update(pair)
                return
            up = pair.upstream = _End(socket.socket(self._family), pair, connecting=True)
            pair.client.peer, up.peer = up, pair.client
            up.sock.setblocking(False)
            up.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            err = up.sock.connect_ex(self._upstream_addr)
        except OSError as exc:  # e.g. no file descriptor left: refuse this one
            log.warning("tcp relay could not open an upstream connection: %s", exc)
            self._upstream_failed(pair, exc.errno or 0)
            return
        if err == 0:
            up.connecting = False
        elif err not in _CONNECTING:
            self._upstream_failed(pair, err)
            return
        self._update(pair)

    def _upstream_failed(self, pair: _Pair, err: int) -> None:
        """Reset the client, as if the upstream had refused it."""
        log.debug("tcp relay: upstream %s: %s", self.upstream, errno.errorcode.get(err, err))
        self._stats["upstream_failed"] += 1
        self._close(pair, reset=True)

    def _dispatch(self, end: _End, mask: int) -> None:
        pair = end.pair
        if pair.closed:  # by an earlier event of the same batch
            return
        try:
            if end.connecting:
                err = end.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self._upstream_failed(pair, err)
                    return
                end.connecting = False
                self._flush(end)
            else:
                if mask & selectors.EVENT_WRITE and not pair.closed:
                    self._flush(end)
                if mask & selectors.EVENT_READ and not pair.closed:
                    self._read(end)
            if not pair.closed:
                self._finish_or_update(pair)
        except OSError as exc:  # reset, broken pipe: mirror it on the other side
            log.debug("tcp relay: connection error: %s", exc)
            self._close(pair, reset=True)
        except Exception:
            log.exception("tcp relay: unexpected error on a connection")
            self._close(pair, reset=True)

    def _read(self, end: _End) -> None:
        try:
            data = end.sock.recv(_CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        pair = end.pair
        if self.blackholed():
            self._taint(pair)
        if not data:
            end.eof = True
            if end.peer is not None:
                self._flush(end.peer)  # propagates the EOF once its bytes are out
            return
        if pair.tainted:
            self._stats["bytes_swallowed"] += len(data)
            return
        assert end.peer is not None
        end.peer.out += data
        self._flush(end.peer)

    def _flush(self, end: _End) -> None:
        """Write what waits for ``end``; once its peer is at EOF and it is all out, shut
        down writing to it, so the last bytes of an answer arrive before the close."""
        if end.connecting or end.pair.closed:
            return
        if end.pair.tainted:
            end.out.clear()
            return
        while end.out:
            try:
                sent = end.sock.send(end.out)
            except (BlockingIOError, InterruptedError):
                return
            del end.out[:sent]
            self._stats["bytes_down" if end is end.pair.client else "bytes_up"] += sent
        if end.peer is not None and end.peer.eof and not end.shut_wr:
            end.shut_wr = True
            with contextlib.suppress(OSError):  # already gone: the close follows anyway
                end.sock.shutdown(socket.SHUT_WR)

    def _finish_or_update(self, pair: _Pair) -> None:
        if pair.done():
            self._close(pair)
        else:
            self._update(pair)

    def _update(self, pair: _Pair) -> None:
        """Watch each socket for what it can do now (bounded buffers: backpressure)."""
        assert self._sel is not None
        for end in pair.ends():
            if end.connecting:
                want = selectors.EVENT_WRITE
            else:
                want = 0
                if not end.eof and (end.peer is None or len(end.peer.out) < _HIGH_WATER):
                    want |= selectors.EVENT_READ
                if end.out:
                    want |= selectors.EVENT_WRITE
            if want == end.events:
                continue
            if not want:
                self._sel.unregister(end.sock)
            elif not end.events:
                self._sel.register(end.sock, want, end)
            else:
                self._sel.modify(end.sock, want, end)
            end.events = want

    def _close(self, pair: _Pair, *, reset: bool = False) -> None:
        if pair.closed:
            return
        pair.closed = True
        self._pairs.discard(pair)
        self._tainted.discard(pair)
        for end in pair.ends():
            if end.events and self._sel is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self._sel.unregister(end.sock)
                end.events = 0
            with contextlib.suppress(OSError):
                if reset:
                    end.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _LINGER_RST)
                end.sock.close()

    def _close_all(self) -> None:
        for pair in list(self._pairs):
            self._close(pair)
        for sock in (self._listener, self._wake_r, self._wake_w):
            if sock is not None:
                sock.close()
        if self._sel is not None:
            self._sel.close()
