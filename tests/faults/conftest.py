"""Fixtures of the fault suite: the backend (SQLite with two rq workers, or a throwaway
PostgreSQL cluster with three) and a FaultStack on it, stopped whatever happens."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.e2e.postgres import postgres_url
from tests.faults.harness import FaultStack

BACKENDS = {"sqlite": 2, "postgres": 3}  # backend -> rq workers

# `make prove` runs the chaos at scale on the embedded defaults; `make prove POSTGRES=1` on
# PostgreSQL too (`make test` runs the shorter PostgreSQL runs every time).
POSTGRES_AT_SCALE = pytest.mark.skipif(
    bool(os.environ.get("GATEWAY_PROVE")) and not os.environ.get("GATEWAY_PROVE_POSTGRES"),
    reason="at scale on PostgreSQL with `make prove POSTGRES=1`",
)


@pytest.fixture
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """'' (the gateway's SQLite in its data dir) or a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield ""
        return
    with postgres_url("gateway") as url:
        yield url


@pytest.fixture
def fault_stack(
    tmp_path: Path, database_url: str, request: pytest.FixtureRequest
) -> Iterator[Callable[..., FaultStack]]:
    """Start a FaultStack: ``fault_stack(**extra_env)``; everything is stopped afterwards."""
    started: list[FaultStack] = []
    workers = BACKENDS["postgres" if database_url else "sqlite"]

    def start(**extra_env: str) -> FaultStack:
        stack = FaultStack(
            tmp_path / "stack", database_url=database_url, workers=workers, extra_env=extra_env
        )
        started.append(stack)
        stack.start()
        return stack

    yield start
    for stack in started:
        stack.stop()
