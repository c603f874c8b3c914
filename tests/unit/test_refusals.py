"""The memory of refused callers: trusted only while the store's window surely lasts."""

from __future__ import annotations

from gateway.api.refusals import ROUNDING, Refusals


def test_a_refusal_holds_until_half_a_second_before_the_stores_rounded_end():
    refusals = Refusals()
    refusals.remember("app|key:a", "10 per 1 second", ends=101.0, now=100.2)
    assert refusals.current("app|key:a", 100.3) is not None
    assert refusals.current("app|key:a", 101.0 - ROUNDING) is None  # may already be over
    assert refusals.window_end("app|key:a", 100.9) == 101.0  # still the Retry-After
    assert refusals.window_end("app|key:a", 101.0) is None
    assert refusals.current("app|key:b", 100.3) is None  # only the caller refused
    assert refusals.current("signed|key:a", 100.3) is None  # and only in its scope


def test_the_memory_is_bounded_and_keeps_the_open_windows():
    refusals = Refusals(size=3)
    refusals.remember("old", "1 per 1 second", ends=10.0, now=9.0)
    refusals.remember("open-1", "1 per 1 minute", ends=100.0, now=9.0)
    refusals.remember("open-2", "1 per 1 minute", ends=100.0, now=9.0)
    refusals.remember("new", "1 per 1 minute", ends=100.0, now=50.0)  # full: "old" goes
    assert refusals.current("old", 9.1) is None
    assert all(refusals.current(b, 50.0) for b in ("open-1", "open-2", "new"))
