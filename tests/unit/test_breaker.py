"""The circuit breaker: opens after repeated retryable failures, lets one trial through later."""

from __future__ import annotations

import pytest

from adapters.breaker import CircuitBreaker
from gateway.domain.errors import RetryableAuthorityError, TerminalAuthorityError


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def _fail() -> None:
    raise RetryableAuthorityError("down")


def test_it_opens_after_the_threshold_and_fails_fast_without_calling():
    clock, calls = Clock(), []
    breaker = CircuitBreaker("customs", failures=2, reset_seconds=10, clock=clock)
    for _ in range(2):
        with pytest.raises(RetryableAuthorityError):
            breaker.call(_fail)
    with pytest.raises(RetryableAuthorityError, match="circuit open"):
        breaker.call(lambda: calls.append(1))
    assert calls == []


def test_after_the_reset_time_one_trial_closes_it_on_success():
    clock = Clock()
    breaker = CircuitBreaker("customs", failures=1, reset_seconds=10, clock=clock)
    with pytest.raises(RetryableAuthorityError):
        breaker.call(_fail)
    clock.now = 11
    assert breaker.call(lambda: "ok") == "ok"
    assert not breaker.is_open


def test_a_failed_trial_opens_it_again_and_terminal_errors_do_not_count():
    clock = Clock()
    breaker = CircuitBreaker("port", failures=1, reset_seconds=10, clock=clock)
    with pytest.raises(TerminalAuthorityError):
        breaker.call(lambda: (_ for _ in ()).throw(TerminalAuthorityError("409")))
    assert not breaker.is_open
    with pytest.raises(RetryableAuthorityError):
        breaker.call(_fail)
    clock.now = 11
    with pytest.raises(RetryableAuthorityError, match="down"):
        breaker.call(_fail)
    assert breaker.is_open
