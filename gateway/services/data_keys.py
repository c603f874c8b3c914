"""Operate the data keys: see what each stored blob is sealed under, and seal old rows
(plaintext from before encryption, or an older key) under the current first key."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Engine, Table, select, text, update

from gateway.domain.audit import Actor
from gateway.persistence import tables as t
from gateway.persistence.data_keys import DataKeyRing, key_id_of
from gateway.services import audit

PLAINTEXT = "plaintext"


@dataclass(frozen=True)
class SealedColumn:
    """A column of sealed blobs and the row field its blobs are bound to."""

    table: Table
    column: str
    bound_to: str

    @property
    def name(self) -> str:
        return f"{self.table.name}.{self.column}"

    def context(self, row: Any) -> str:
        return f"{self.name}:{row[self.bound_to]}"


SEALED_COLUMNS = (
    SealedColumn(t.messages, "raw_xml", "id"),
    SealedColumn(t.messages, "signed_xml", "id"),
    SealedColumn(t.receipts, "raw_xml", "fingerprint"),  # rows before migration 0013
    SealedColumn(t.inbound_messages, "raw_xml", "digest"),
)


def _rows(engine: Engine, sc: SealedColumn, batch: int) -> Iterator[list[Any]]:
    pk: Column[Any] = next(iter(sc.table.primary_key.columns))
    after = None
    while True:
        stmt = (
            select(pk, sc.table.c[sc.bound_to], sc.table.c[sc.column])
            .where(sc.table.c[sc.column].is_not(None))  # newer receipts name their message
            .order_by(pk)
            .limit(batch)
        )
        if after is not None:
            stmt = stmt.where(pk > after)
        with engine.connect() as conn:
            rows = list(conn.execute(stmt).mappings())
        if not rows:
            return
        yield rows
        after = rows[-1][pk.name]


def key_usage(engine: Engine, batch: int = 500) -> dict[str, Counter[str]]:
    """For each sealed column: how many blobs under each key id (or still plaintext)."""
    usage: dict[str, Counter[str]] = {}
    for sc in SEALED_COLUMNS:
        counts: Counter[str] = Counter()
        for rows in _rows(engine, sc, batch):
            counts.update(key_id_of(r[sc.column]) or PLAINTEXT for r in rows)
        usage[sc.name] = counts
    return usage


def reencrypt(engine: Engine, ring: DataKeyRing, actor: Actor, batch: int = 200) -> Counter[str]:
    """Seal every blob not under the first key with it, a batch per transaction; returns
    how many were resealed per column. Safe to rerun and to run beside the gateway."""
    done: Counter[str] = Counter()
    for sc in SEALED_COLUMNS:
        pk = next(iter(sc.table.primary_key.columns))
        col = sc.table.c[sc.column]
        for rows in _rows(engine, sc, batch):
            stale = [r for r in rows if key_id_of(r[sc.column]) != ring.primary]
            if not stale:
                continue
            with engine.begin() as conn:
                for r in stale:
                    ctx = sc.context(r)
                    sealed = ring.seal(ring.open(r[sc.column], ctx), ctx)
                    # Conditional: a blob changed meanwhile is left for the next run.
                    result = conn.execute(
                        update(sc.table)
                        .where(pk == r[pk.name], col == r[sc.column])
                        .values({sc.column: sealed})
                    )
                    done[sc.name] += result.rowcount
    audit.record_now(
        engine, actor, "data_keys.reencrypted", [ring.primary], {k: v for k, v in done.items()}
    )
    return done


def scrub_sqlite(engine: Engine) -> bool:
    """On SQLite, rewrite the file so no old plaintext page survives (VACUUM, then empty
    the WAL); a no-op elsewhere (PostgreSQL's autovacuum reclaims dead rows)."""
    if engine.dialect.name != "sqlite":
        return False
    with engine.connect() as conn:
        conn.execute(text("VACUUM"))
        conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)"))
    return True
