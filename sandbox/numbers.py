"""Numbers the authority assigns, in their public formats."""

from __future__ import annotations

import itertools
import threading
from datetime import datetime
from zoneinfo import ZoneInfo

CHINA = ZoneInfo("Asia/Shanghai")
_counter = itertools.count(1)
_lock = threading.Lock()


def _next() -> int:
    with _lock:
        return next(_counter)


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
