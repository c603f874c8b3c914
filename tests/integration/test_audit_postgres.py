"""The audit chain under concurrent writers on PostgreSQL: the head row's lock keeps one
linear chain (skipped when Debian's PostgreSQL binaries are not installed)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select

from gateway.domain.audit import Actor
from gateway.persistence import tables as t
from gateway.persistence.database import make_engine
from gateway.persistence.migrate import upgrade
from gateway.services.audit import record, verify
from tests.e2e.postgres import postgres_url


@pytest.fixture(scope="module")
def pg_engine() -> Iterator[Engine]:
    with postgres_url("audit") as url:
        upgrade(url)
        engine = make_engine(url)
        yield engine
        engine.dispose()


def test_eight_writers_on_postgresql_make_one_linear_chain(pg_engine: Engine) -> None:
    writers, each = 8, int(os.environ.get("AUDIT_WRITES_EACH", "50"))  # T10: 1000
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            for i in range(each):
                with pg_engine.begin() as conn:
                    record(conn, Actor("authority", f"writer{w}"), "receipt.applied", [str(i)])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    result = verify(pg_engine)
    assert result.ok, result.first_break
    assert result.entries == result.head_seq == writers * each
    with pg_engine.connect() as conn:
        parents = conn.execute(select(t.audit_log.c.prev_hash)).scalars().all()
    assert len(set(parents)) == len(parents)
