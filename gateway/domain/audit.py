"""The audit trail: who did what, as an append-only hash chain that shows any tampering.

Each entry is (seq, at, actor, action, objects, details) plus the hash of the entry before
it; its own hash is SHA-256 over the entry's canonical JSON followed by that previous hash.
Changing, removing, inserting or reordering an entry breaks the chain at that entry, which
``verify_chain`` names (its position, counting from 1).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

GENESIS = "0" * 64


@dataclass(frozen=True)
class Actor:
    """Who acted: an organisation's API key, an authority, an operator at the CLI, or the
    gateway itself."""

    kind: str  # org | authority | operator | system
    id: str
    key_id: str | None = None
    role: str | None = None

    def as_dict(self) -> dict[str, str]:
        out = {"kind": self.kind, "id": self.id}
        if self.key_id:
            out["key_id"] = self.key_id
        if self.role:
            out["role"] = self.role
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Actor:
        return cls(data["kind"], data["id"], data.get("key_id"), data.get("role"))


@dataclass(frozen=True)
class AuditEntry:
    """One recorded action; ``at`` is ISO 8601 UTC with microseconds."""

    seq: int
    at: str
    actor: Actor
    action: str
    objects: tuple[str, ...] = ()
    details: Mapping[str, Any] = field(default_factory=dict)

    def canonical(self) -> bytes:
        """The bytes that are hashed: sorted keys, no spaces, UTF-8."""
        return json.dumps(
            {
                "seq": self.seq,
                "at": self.at,
                "actor": self.actor.as_dict(),
                "action": self.action,
                "objects": list(self.objects),
                "details": dict(self.details),
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        ).encode()


def chain_hash(entry: AuditEntry, prev_hash: str) -> str:
    """The entry's hash, linking it to the one before."""
    return hashlib.sha256(entry.canonical() + prev_hash.encode()).hexdigest()


@dataclass(frozen=True)
class StoredEntry:
    """An entry as read back, with the hashes stored beside it."""

    entry: AuditEntry
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class ChainBreak:
    """Where the chain is first broken (position from 1) and why."""

    index: int
    seq: int | None
    reason: str


def _inserted_before(s: StoredEntry, index: int, before_previous: str) -> bool:
    """Whether entry ``index`` would link if the entry before it were not there: then that
    one was inserted (and the entries after it renumbered)."""
    moved = replace(s.entry, seq=index - 1)
    return s.prev_hash == before_previous and chain_hash(moved, before_previous) == s.hash


def verify_chain(stored: Iterable[StoredEntry], head_seq: int) -> tuple[int, ChainBreak | None]:
    """Check every link in order; returns (entries checked, the first break or None).
    ``head_seq`` is the count the chain head records, so a removed tail is caught too."""
    hashes, index = [GENESIS], 0
    for index, s in enumerate(stored, start=1):
        e, prev = s.entry, hashes[-1]
        problem = None
        if e.seq != index:
            problem = f"expected seq {index}, found {e.seq}"
        elif s.prev_hash != prev:
            problem = "prev_hash does not match the entry before"
        elif chain_hash(e, s.prev_hash) != s.hash:
            problem = "hash does not match the entry's content"
        if problem is not None:
            if index >= 2 and _inserted_before(s, index, hashes[-2]):
                return index, ChainBreak(
                    index - 1, index - 1, "inserted: the entry after it links past it"
                )
            return index, ChainBreak(index, e.seq, problem)
        hashes = [hashes[-1], s.hash]  # only the last two are ever needed
    if head_seq != index:
        at = min(index, head_seq) + 1
        return index, ChainBreak(
            at, None, f"the chain head counts {head_seq} entries, the log holds {index}"
        )
    return index, None
