"""Identifiers: a readable prefix and a time-ordered random part, so ids sort by creation."""

from __future__ import annotations

import os
import time


def new_id(prefix: str) -> str:
    """``prefix_`` + 12 hex digits of milliseconds + 12 random hex digits."""
    return f"{prefix}_{int(time.time() * 1000):012x}{os.urandom(6).hex()}"
