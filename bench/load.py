"""The load generator: a separate process speaking HTTP/1.1 over raw keep-alive sockets.

`python -m bench.load SPEC.json OUT.json` runs one phase described by the spec and writes
one record per request: (wall time sent, latency s, HTTP status, kind, lines, accepted).
Modes: ``closed`` (N connections, each sends as soon as its last answer came: the maximum
rate), ``open`` (a fixed arrival rate spread over the connections; latency counts from the
scheduled send time, so a slow server cannot hide its queue), ``batch`` (ZIPs of documents
to the batch endpoint, ``?wait=``). `--serve PORT` answers every request with a canned 202
instead: the generator's own ceiling, measured against it.
"""

from __future__ import annotations

import asyncio
import json
import random
import resource
import sys
import time
from typing import Any
from urllib.parse import urlparse

from bench.documents import Mix, zip_of


class Conn:
    """One keep-alive HTTP/1.1 connection; reconnects when the server closes it."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.location = ""  # the last answer's Location header

    async def request(self, head: bytes, body: bytes) -> tuple[int, bytes]:
        for attempt in (1, 2):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            try:
                self.writer.write(head + body)
                await self.writer.drain()
                return await self._response()
            except (ConnectionError, asyncio.IncompleteReadError):
                self.writer.close()
                self.writer = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _response(self) -> tuple[int, bytes]:
        assert self.reader is not None
        status_line = await self.reader.readuntil(b"\r\n")
        status = int(status_line.split(b" ", 2)[1])
        length, close = 0, False
        self.location = ""
        while True:
            line = await self.reader.readuntil(b"\r\n")
            if line == b"\r\n":
                break
            name, _, value = line.partition(b":")
            name = name.strip().lower()
            if name == b"content-length":
                length = int(value)
            elif name == b"location":
                self.location = value.strip().decode("latin-1")
            elif name == b"connection" and value.strip().lower() == b"close":
                close = True
        body = await self.reader.readexactly(length) if length else b""
        if close and self.writer is not None:
            self.writer.close()
            self.writer = None
        return status, body


def _head(spec: dict[str, Any], path: str, content_type: str, length: int) -> bytes:
    u = urlparse(spec["base"])
    return (
        f"POST {path} HTTP/1.1\r\nHost: {u.netloc}\r\nAuthorization: Bearer {spec['key']}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def _finish_batch(spec: dict[str, Any], conn: Conn, status: int, body: bytes) -> bytes:
    """A batch answered before it was done (202, processed < total): wait on its status
    resource (the Location header, else /batch/<id>) until every item is processed."""
    deadline = time.time() + spec.get("wait", 60) * 2
    while status in (200, 202) and time.time() < deadline:
        try:
            state = json.loads(body)
        except ValueError:
            return body
        if not isinstance(state, dict) or state.get("processed", 0) >= state.get("total", 0):
            return body
        path = conn.location or f"/api/v1/declarations/batch/{state.get('id')}"
        path += ("&" if "?" in path else "?") + f"wait={spec.get('wait', 60)}"
        u = urlparse(spec["base"])
        head = (
            f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\n"
            f"Authorization: Bearer {spec['key']}\r\n\r\n"
        ).encode()
        status, body = await conn.request(head, b"")
    return body


def _accepted(status: int, body: bytes, mode: str) -> int:
    if mode != "batch":
        return int(status == 202)
    try:
        return int(json.loads(body).get("accepted", 0))
    except (ValueError, AttributeError):
        return 0


async def _worker(
    spec: dict[str, Any], conn: Conn, mix: Mix, records: list[list[Any]], i: int
) -> None:
    mode, deadline = spec["mode"], spec["start"] + spec["seconds"]
    interval = spec["connections"] / spec["rate"] if mode == "open" else 0.0
    due = spec["start"] + interval * i / spec["connections"]
    while True:
        if mode == "open":
            delay = due - time.time()
            if delay > 0:
                await asyncio.sleep(delay)
        if time.time() >= deadline:
            return
        if mode == "batch":
            drawn = [mix.draw() for _ in range(spec["batch_size"])]
            body = zip_of([b for _k, _n, b in drawn])
            path = f"/api/v1/declarations/batch?wait={spec.get('wait', 60)}"
            head, kind, lines = _head(spec, path, "application/zip", len(body)), "batch", 0
        else:
            kind, lines, body = mix.draw()
            head = _head(spec, "/api/v1/declarations", "application/xml", len(body))
        sent = due if mode == "open" else time.time()
        try:
            status, answer = await conn.request(head, body)
            if mode == "batch":
                answer = await _finish_batch(spec, conn, status, answer)
        except (OSError, asyncio.IncompleteReadError) as exc:
            status, answer = 599, str(exc).encode()
        done = time.time()
        records.append([sent, done - sent, status, kind, lines, _accepted(status, answer, mode)])
        if mode == "batch" and status in (404, 405):
            return  # no batch endpoint: the caller reports the mode as skipped
        due += interval


async def run_phase(spec: dict[str, Any]) -> dict[str, Any]:
    u = urlparse(spec["base"])
    records: list[list[Any]] = []
    conns = [Conn(u.hostname or "127.0.0.1", u.port or 80) for _ in range(spec["connections"])]
    mixes = [Mix(seed=random.SystemRandom().getrandbits(64)) for _ in range(spec["connections"])]
    spec.setdefault("start", time.time() + 0.2)
    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    await asyncio.gather(
        *(
            _worker(spec, c, m, records, i)
            for i, (c, m) in enumerate(zip(conns, mixes, strict=True))
        )
    )
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
    return {"records": records, "cpu_seconds": cpu, "start": spec["start"], "end": time.time()}


async def _serve(port: int) -> None:
    body = b'{"id": "dcl_x", "type": "CEB621", "status": "accepted"}'
    answer = (
        b"HTTP/1.1 202 ACCEPTED\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                writer.write(answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main(argv: list[str]) -> int:
    if argv[0] == "--serve":
        asyncio.run(_serve(int(argv[1])))
        return 0
    with open(argv[0]) as fh:
        spec = json.load(fh)
    result = asyncio.run(run_phase(spec))
    with open(argv[1], "w") as out:
        json.dump(result, out)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
