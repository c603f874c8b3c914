"""The sandbox customs' book of partner documents: it keeps every order, payment and waybill
it accepted and lets an inventory list wait (strict mode) until all three are in or a
deadline passes. The match rule itself is the gateway's (gateway/domain/matching.py)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from gateway.domain.matching import (  # noqa: F401 - re-exported for the sandbox
    INVENTORY_DIRECTION,
    PARTNER_TYPES,
    ROLE_ZH,
    ROLES,
    Document,
    Mismatch,
    Partners,
    check,
    inventory_keys,
    mismatch_reason,
    missing_reason,
    partner_key,
)

Callback = Callable[[Partners], None]


@dataclass
class _Waiter:
    direction: str
    keys: dict[str, tuple[str, str]]
    callback: Callback


class PartnerBook:
    """Partner documents received so far, and inventory lists waiting for theirs."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._docs: dict[tuple[str, str, tuple[str, str]], Document] = {}
        self._waiters: dict[str, _Waiter] = {}

    def add(self, doc: Document) -> None:
        """Keep a partner document; wake every waiting inventory list it completes."""
        direction, role = PARTNER_TYPES[doc.type]
        ready: list[tuple[_Waiter, Partners]] = []
        with self._lock:
            self._docs[(direction, role, partner_key(role, doc.head))] = doc
            for token, waiter in list(self._waiters.items()):
                partners = self._find(waiter.direction, waiter.keys)
                if not partners.missing():
                    del self._waiters[token]
                    ready.append((waiter, partners))
        for waiter, partners in ready:
            waiter.callback(partners)

    def _find(self, direction: str, keys: dict[str, tuple[str, str]]) -> Partners:
        found = {role: self._docs.get((direction, role, keys[role])) for role in ROLES}
        return Partners(**found)

    def find(self, inventory: Document) -> Partners:
        direction = INVENTORY_DIRECTION.get(inventory.type, "I")
        with self._lock:
            return self._find(direction, inventory_keys(inventory.head))

    def wait(self, token: str, inventory: Document, callback: Callback) -> bool:
        """Call ``callback`` once all three partners are in; False (and no wait) when they
        already are. ``expire(token)`` ends the wait."""
        direction = INVENTORY_DIRECTION.get(inventory.type, "I")
        keys = inventory_keys(inventory.head)
        with self._lock:
            if not self._find(direction, keys).missing():
                return False
            self._waiters[token] = _Waiter(direction, keys, callback)
            return True

    def expire(self, token: str) -> Partners | None:
        """End a wait: the partners found so far, or None if the wait already ended."""
        with self._lock:
            waiter = self._waiters.pop(token, None)
            return None if waiter is None else self._find(waiter.direction, waiter.keys)

    def waiting(self) -> int:
        with self._lock:
            return len(self._waiters)
