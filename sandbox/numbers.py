"""Numbers the authority assigns, in their public formats."""

from __future__ import annotations

import os
import threading
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")
BLOCK = 10_000


class _Sequence:
    """The sequence behind every number. With a state file it survives restarts: blocks of
    BLOCK numbers are reserved on disk before use, so a restarted sandbox (like the real
    authority) never hands out a preNo or invtNo twice."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.path: Path | None = None
        self.value = 0
        self.limit = 0

    def use_file(self, path: Path) -> None:
        with self.lock:
            self.path = path
            self.limit = self.value = max(self.value, self._stored())

    def _stored(self) -> int:
        assert self.path is not None
        try:
            return int(self.path.read_text().strip() or 0)
        except (FileNotFoundError, ValueError):
            return 0

    def _reserve(self) -> None:
        assert self.path is not None
        self.limit = self.value + BLOCK
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(str(self.limit))
        os.replace(tmp, self.path)

    def next(self) -> int:
        with self.lock:
            if self.path is not None and self.value >= self.limit:
                self._reserve()
            self.value += 1
            return self.value


_sequence = _Sequence()


def keep_sequence_in(path: Path) -> None:
    """Continue the numbering from ``path`` (and keep reserving blocks there)."""
    _sequence.use_file(path)


def _next() -> int:
    return _sequence.next()


def china_now() -> datetime:
    return datetime.now(CHINA)


def pre_no(at: datetime) -> str:
    """B + YYYYMMDD + 9 digits (18 characters)."""
    return f"B{at:%Y%m%d}{_next() % 10**9:09d}"


def invt_no(customs_code: str, at: datetime, ie_flag: str = "I") -> str:
    """customs code (4) + year (4) + I/E + 9 digits (18 characters)."""
    return f"{customs_code[:4]:0>4}{at:%Y}{ie_flag[:1] or 'I'}{_next() % 10**9:09d}"


def return_time(at: datetime) -> str:
    """YYYYMMDDhhmmss + milliseconds (17 digits), China local time."""
    return at.strftime("%Y%m%d%H%M%S") + f"{at.microsecond // 1000:03d}"
