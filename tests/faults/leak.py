"""The leak scan (RELIABILITY T9) over a chaos run's artifacts: after the faults, no buyer's
ID number or phone may be in plaintext in Redis, any file of the data dir (database + WAL,
logs, Redis AOF, fault report), the database's rows, the operator's exports, or what the
port was sent.

Customs' and inspection's payloads are the authorities' own and are not scanned; the
audited reveal is an API answer, which this scan does not collect. Call ``scan_stack``
while the stack still runs (Redis and the sandbox are read live).
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import warnings
from collections.abc import Iterator
from typing import Any

import httpx
from sqlalchemy import create_engine, inspect
from sqlalchemy.exc import SAWarning

from gateway.settings import load_settings
from tests.e2e.stack import PROJECT_ROOT
from tests.faults.harness import FaultStack
from tests.leak_scan import (
    ID_NUMBER,
    PHONE,
    buyer_fields,
    files_bytes,
    find_leaks,
    mask,
    redis_bytes,
)

PORT_PAYLOADS = "port payloads"
DATABASE = "database rows"


def database_url(stack: FaultStack) -> str:
    """The stack's PostgreSQL URL, or its SQLite file's, as the gateway itself works it out."""
    return load_settings(stack.env()).db_url


def _value_bytes(value: Any) -> bytes:
    """A column value as the bytes a leak would show: bytea as is, JSON as text."""
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value)
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False).encode()
    return str(value).encode()


def _rows(url: str) -> Iterator[bytes]:
    """Every non-null value of every table, as the driver returns it (no type processing,
    so every column counts: a phone could hide in a number column too)."""
    engine = create_engine(url)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", SAWarning)  # types reflection does not know
            tables = inspect(engine).get_table_names()
        quote = engine.dialect.identifier_preparer.quote
        with engine.connect() as conn:
            for table in tables:
                result = conn.exec_driver_sql(f"SELECT * FROM {quote(table)}")  # noqa: S608
                for row in result:
                    yield b"\x00".join(_value_bytes(v) for v in row if v is not None)
    finally:
        engine.dispose()


def database_bytes(url: str) -> bytes:
    """The database's rows, read through SQL: a value split across SQLite overflow pages,
    or in PostgreSQL's files outside the data dir, is whole here."""
    return b"\n".join(_rows(url))


def port_payloads(sandbox: str) -> bytes:
    """What the sandbox (at base URL ``sandbox``) port received, from its
    GET /admin/port/received, decoded."""
    resp = httpx.get(sandbox + "/admin/port/received", timeout=30)
    resp.raise_for_status()
    return b"\n".join(base64.b64decode(p) for p in resp.json()["payloads"])


def exports(stack: FaultStack) -> dict[str, bytes]:
    """The operator's exports of every declaration (`gateway export`), CSV and JSON lines."""
    out = {}
    for fmt in ("csv", "jsonl"):
        done = subprocess.run(
            [sys.executable, "-m", "gateway", "export", "--format", fmt],
            cwd=PROJECT_ROOT,
            env=stack.env(),
            capture_output=True,
            timeout=120,
            check=True,
        )
        out[f"export ({fmt})"] = done.stdout
    return out


def stack_places(stack: FaultStack) -> dict[str, bytes]:
    """Every place of the stack a buyer's data must not be in plaintext."""
    places = {
        "redis": redis_bytes(f"redis://127.0.0.1:{stack.redis_port}/0"),
        DATABASE: database_bytes(database_url(stack)),
        PORT_PAYLOADS: port_payloads(stack.sandbox),
        **exports(stack),
    }
    places.update(files_bytes(stack.data_dir))
    return places


def scan_stack(
    stack: FaultStack, bodies: list[bytes], extra: dict[str, bytes] | None = None
) -> dict[str, Any]:
    """Scan the stack (and ``extra`` places, e.g. exports or API answers) for the buyers of
    ``bodies`` (the CEB621 messages submitted); a report whose leaks are masked."""
    fields = buyer_fields(bodies)
    places = {**stack_places(stack), **(extra or {})}
    leaks = find_leaks(fields[ID_NUMBER] | fields[PHONE], places)
    return {
        "buyers": len(fields[ID_NUMBER]),
        "phones": len(fields[PHONE]),
        "places": {where: len(content) for where, content in places.items()},
        "bytes_scanned": sum(len(content) for content in places.values()),
        "leaks": [[where, mask(secret)] for where, secret in leaks],
        "leak_count": len(leaks),
    }
