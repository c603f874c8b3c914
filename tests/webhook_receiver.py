"""A real HTTP receiver for webhook tests: records every request, answers as scripted."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    answered: int

    @property
    def json(self) -> Any:
        return json.loads(self.body)


class Receiver:
    """A threaded http.server on a free loopback port; ``fail(n)`` answers 500 n times."""

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._script: deque[int] = deque()
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver._lock:
                    status = receiver._script.popleft() if receiver._script else 200
                    receiver.requests.append(
                        Received(self.path, dict(self.headers.items()), body, status)
                    )
                answer = b'{"ok": true}' if status < 300 else b"receiver is down"
                self.send_response(status)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/hook"

    def fail(self, times: int, status: int = 500) -> None:
        """Answer the next ``times`` requests with ``status``; 200 after that."""
        with self._lock:
            self._script.extend([status] * times)

    def accepted(self) -> list[Received]:
        """The requests answered with a 2xx."""
        with self._lock:
            return [r for r in self.requests if 200 <= r.answered < 300]

    def wait_for(self, done: Callable[[Receiver], bool], timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if done(self):
                return
            time.sleep(0.05)
        raise AssertionError(f"receiver never saw what was wanted; got {self.requests}")

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
