"""The audit trail on a real database: appends from the use cases, one linear chain under
concurrent writers, and every kind of tampering caught at the entry where it happened."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import replace

import pytest
from sqlalchemy import Engine, delete, insert, select, update

from gateway.domain.audit import Actor, AuditEntry, chain_hash
from gateway.persistence import tables as t
from gateway.persistence.database import get_engine
from gateway.services.audit import record, verify
from gateway.settings import Settings

ALICE = Actor("org", "org_alice", "key_1", "broker")


@pytest.fixture
def engine(settings: Settings) -> Engine:
    return get_engine(settings.db_url)


def _append(engine: Engine, n: int) -> None:
    for i in range(n):
        with engine.begin() as conn:
            record(conn, ALICE, "declaration.submitted", [f"dcl_{i}"], {"type": "CEB621"})


def _rows(engine: Engine) -> list[dict]:  # type: ignore[type-arg]
    with engine.connect() as conn:
        stmt = select(t.audit_log).order_by(t.audit_log.c.seq)
        return [dict(r) for r in conn.execute(stmt).mappings()]


def test_an_untouched_chain_verifies_and_an_entry_rolls_back_with_its_transaction(
    engine: Engine,
) -> None:
    _append(engine, 3)
    with pytest.raises(RuntimeError), engine.begin() as conn:
        record(conn, ALICE, "declaration.submitted", ["dcl_x"])
        raise RuntimeError("the use case failed after auditing")
    result = verify(engine)
    assert result.ok and result.entries == 3 and result.head_seq == 3


# --- tampering: modify / delete / insert / reorder at the first, a middle and the last ---

N = 9
POSITIONS = {"first": 1, "middle": 5, "last": N}


def _modify(engine: Engine, k: int) -> int:
    with engine.begin() as conn:
        conn.execute(
            update(t.audit_log).where(t.audit_log.c.seq == k).values(details={"type": "CEB311"})
        )
    return k


def _delete(engine: Engine, k: int) -> int:
    with engine.begin() as conn:
        conn.execute(delete(t.audit_log).where(t.audit_log.c.seq == k))
    return k


def _insert(engine: Engine, k: int) -> int:
    """A careful forger: renumbers the entries from k on and links a well-formed entry in."""
    rows = _rows(engine)
    prev = rows[k - 2]["hash"] if k >= 2 else "0" * 64
    with engine.begin() as conn:
        for r in reversed(rows[k - 1 :]):
            conn.execute(
                update(t.audit_log).where(t.audit_log.c.seq == r["seq"]).values(seq=r["seq"] + 1)
            )
        forged = AuditEntry(
            k, "2026-12-01T00:00:00.000000Z", ALICE, "api_key.created", ("key_evil",), {}
        )
        conn.execute(
            insert(t.audit_log).values(
                seq=k,
                at=forged.at,
                actor=ALICE.as_dict(),
                action=forged.action,
                objects=list(forged.objects),
                details={},
                prev_hash=prev,
                hash=chain_hash(forged, prev),
            )
        )
    return k


def _insert_at_end(engine: Engine, _k: int) -> int:
    rows = _rows(engine)
    with engine.begin() as conn:
        forged = AuditEntry(N + 1, "2026-12-01T00:00:00.000000Z", ALICE, "api_key.created", (), {})
        conn.execute(
            insert(t.audit_log).values(
                seq=N + 1,
                at=forged.at,
                actor=ALICE.as_dict(),
                action=forged.action,
                objects=[],
                details={},
                prev_hash=rows[-1]["hash"],
                hash=chain_hash(forged, rows[-1]["hash"]),
            )
        )
    return N + 1


def _reorder(engine: Engine, k: int) -> int:
    """Swap an entry with its neighbour (the one after it; the last swaps with the one
    before): the chain breaks at the earlier of the two."""
    a = k if k < N else k - 1
    with engine.begin() as conn:
        conn.execute(update(t.audit_log).where(t.audit_log.c.seq == a).values(seq=-1))
        conn.execute(update(t.audit_log).where(t.audit_log.c.seq == a + 1).values(seq=a))
        conn.execute(update(t.audit_log).where(t.audit_log.c.seq == -1).values(seq=a + 1))
    return a


TAMPERING: dict[str, Callable[[Engine, int], int]] = {
    "modify": _modify,
    "delete": _delete,
    "insert": _insert,
    "reorder": _reorder,
}


@pytest.mark.parametrize("position", POSITIONS)
@pytest.mark.parametrize("kind", TAMPERING)
def test_tampering_is_caught_at_the_entry_where_it_happened(
    engine: Engine, kind: str, position: str
) -> None:
    _append(engine, N)
    assert verify(engine).ok
    tamper = _insert_at_end if (kind, position) == ("insert", "last") else TAMPERING[kind]
    expected = tamper(engine, POSITIONS[position])
    result = verify(engine)
    assert not result.ok
    assert result.first_break is not None
    assert result.first_break.index == expected, result.first_break


def test_eight_concurrent_writers_make_one_linear_chain(engine: Engine) -> None:
    writers, each = 8, int(os.environ.get("AUDIT_WRITES_EACH", "40"))  # T10: 1000
    errors: list[BaseException] = []

    def write(w: int) -> None:
        try:
            for i in range(each):
                with engine.begin() as conn:
                    record(conn, replace(ALICE, id=f"org_{w}"), "receipt.applied", [f"{w}:{i}"])
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    result = verify(engine)
    assert result.ok and result.entries == writers * each
    rows = _rows(engine)
    assert [r["seq"] for r in rows] == list(range(1, writers * each + 1))
    assert len({r["prev_hash"] for r in rows}) == len(rows)  # no two entries share a parent
