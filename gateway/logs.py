"""Structured logs: one JSON object per line, with the request id and the ids in play.

The ids live in a context variable, bound by the HTTP layer (request id) and by jobs (the
request id that caused them, dispatch and declaration ids), so every line a delivery writes
names the submission it came from. Personal data never belongs in a log; a filter masks
anything shaped like an ID card or mobile number as a safety net.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

_IDS: ContextVar[Mapping[str, str]] = ContextVar("gateway_log_ids", default={})  # noqa: B039
REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
# 17 digits and a check character (a resident ID card), and mainland mobile numbers, each not
# part of a longer run of letters or digits (so ids like invtNo or preNo are left alone).
_ID_CARD = re.compile(r"(?<![0-9A-Za-z])(\d{6})\d{8}(\d{3}[\dXx])(?![0-9A-Za-z])")
_PHONE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86[- ]?)?(1[3-9]\d)\d{4}(\d{4})(?![0-9A-Za-z])")


def mask_personal(text: str) -> str:
    """ID card numbers keep their region and check part, phones their first 3 and last 4."""
    if not any(c.isdigit() for c in text):
        return text
    text = _ID_CARD.sub(r"\1********\2", text)
    return _PHONE.sub(r"\1****\2", text)


def bind(**ids: str | None) -> Token[Mapping[str, str]]:
    """Add ids to the current log context; give the token to ``unbind`` when done."""
    merged = {**_IDS.get(), **{k: v for k, v in ids.items() if v}}
    return _IDS.set(merged)


def unbind(token: Token[Mapping[str, str]]) -> None:
    _IDS.reset(token)


@contextmanager
def bound(**ids: str | None) -> Iterator[None]:
    """The ids in the log context for the duration of a block."""
    token = bind(**ids)
    try:
        yield
    finally:
        unbind(token)


def current_ids() -> Mapping[str, str]:
    return _IDS.get()


def current_request_id() -> str | None:
    return _IDS.get().get("request_id")


def valid_request_id(value: str | None) -> str | None:
    """An incoming X-Request-Id we can carry safely (short, no spaces or control bytes)."""
    return value if value and REQUEST_ID.fullmatch(value) else None


class PersonalDataFilter(logging.Filter):
    """Masks ID card and phone numbers in every record's message before any handler sees it."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_personal(message)
        if masked != message or record.args:
            record.msg, record.args = masked, None
        return True


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, the bound ids, and the exception when there is one."""

    def __init__(self, process: str) -> None:
        super().__init__()
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": self.process,
            **_IDS.get(),
        }
        if record.exc_info:
            out["exception"] = mask_personal(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False, default=str)


class PlainFormatter(logging.Formatter):
    """For a person at a terminal: the same fields on one readable line."""

    def __init__(self, process: str) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")
        self.process = process

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        ids = " ".join(f"{k}={v}" for k, v in _IDS.get().items())
        line = f"{line} [{self.process}{' ' + ids if ids else ''}]"
        return mask_personal(line) if record.exc_info else line


def configure_logging(fmt: str, level: str, process: str) -> None:
    """Send every logger's records to stderr as JSON (or plain) lines, masked; idempotent."""
    if fmt not in ("json", "plain"):
        raise ValueError(f"log_format must be json or plain, not {fmt!r}")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(process) if fmt == "json" else PlainFormatter(process))
    handler.addFilter(PersonalDataFilter())
    handler.set_name("gateway")
    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == "gateway"]:
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("alembic", "httpx", "httpcore", "werkzeug"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
