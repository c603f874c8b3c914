"""The personal annual quota (个人年度交易限值): 26,000 CNY per buyer per calendar year.

Why a ledger: the amount used is derived from release and restore entries, never stored as
a running total, so a replayed receipt or a second cancel cannot count twice. Rules:

- A transaction counts when it is released (the year of the release date in China local
  time), for its dutiable value (完税价格: goods, freight, insurance).
- A cancel or a return restores what the declaration counted, once: a restore for a
  declaration that never counted, or a second restore, changes nothing. Entries apply in
  ledger order; a second release of the same declaration is ignored too.
- The buyer is keyed by an HMAC of the ID, never the ID number itself (personal data).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

ANNUAL_LIMIT = Decimal("26000")
# China Standard Time: UTC+8 all year (no daylight saving since 1991); no tzdata needed.
CHINA_TIME = dt.timezone(dt.timedelta(hours=8), "Asia/Shanghai")
MIN_SECRET_BYTES = 16


class QuotaKind(StrEnum):
    """What a ledger entry does to the quota."""

    RELEASE = "release"  # the transaction counts (customs released it)
    RESTORE = "restore"  # cancelled or returned: give back what it counted


@dataclass(frozen=True)
class QuotaEntry:
    """One line of the quota ledger; ``declaration_id`` makes every entry idempotent."""

    buyer_key: str
    year: int
    amount: Decimal
    kind: QuotaKind
    declaration_id: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", QuotaKind(self.kind))  # "release" -> the enum
        if not self.amount.is_finite() or self.amount < 0:
            raise ValueError(f"a quota amount must be a non-negative number; got {self.amount}")


@dataclass(frozen=True)
class QuotaDecision:
    """Whether a transaction fits the buyer's remaining quota, with the reason in two languages."""

    allowed: bool
    remaining_before: Decimal
    remaining_after: Decimal
    reason_en: str
    reason_zh: str


def buyer_key(id_type: str, id_number: str, secret: bytes) -> str:
    """A stable pseudonym of a buyer: HMAC-SHA256 (hex) of the ID type and normalised number."""
    if len(secret) < MIN_SECRET_BYTES:
        raise ValueError(f"the buyer-key secret must be at least {MIN_SECRET_BYTES} bytes")
    message = f"{id_type.strip()}:{id_number.strip().upper()}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def quota_year(released_at: dt.datetime) -> int:
    """The calendar year a release counts in: its year in China local time."""
    if released_at.tzinfo is None or released_at.utcoffset() is None:
        raise ValueError("the release time must be timezone-aware (store UTC)")
    return released_at.astimezone(CHINA_TIME).year


@dataclass
class _Counted:
    buyer_key: str
    year: int
    amount: Decimal
    restored: bool = False


def _fold(entries: Iterable[QuotaEntry]) -> dict[str, _Counted]:
    counted: dict[str, _Counted] = {}
    for e in entries:
        current = counted.get(e.declaration_id)
        if e.kind == QuotaKind.RELEASE:
            if current is None:  # a repeated release is a replayed receipt: ignore
                counted[e.declaration_id] = _Counted(e.buyer_key, e.year, e.amount)
        elif current is not None and not current.restored:
            # Give back at most what counted (a partial return restores less), into the
            # year and buyer it counted against, whatever the restore entry says.
            current.amount -= min(e.amount, current.amount)
            current.restored = True
    return counted


def used(entries: Iterable[QuotaEntry], buyer_key: str, year: int) -> Decimal:
    """How much of the buyer's quota for ``year`` the ledger has counted."""
    return sum(
        (c.amount for c in _fold(entries).values() if c.buyer_key == buyer_key and c.year == year),
        Decimal("0.00"),
    )


def remaining(
    entries: Iterable[QuotaEntry], buyer_key: str, year: int, limit: Decimal = ANNUAL_LIMIT
) -> Decimal:
    """What the buyer may still buy in ``year`` (never below zero)."""
    return max(Decimal("0.00"), Decimal(limit) - used(entries, buyer_key, year))


def counted_for(entries: Iterable[QuotaEntry], declaration_id: str) -> Decimal:
    """What a declaration currently holds of its buyer's quota (0 if none or restored)."""
    c = _fold(entries).get(declaration_id)
    return c.amount if c is not None else Decimal("0.00")


def check(
    entries: Iterable[QuotaEntry],
    buyer_key: str,
    year: int,
    amount: Decimal,
    *,
    limit: Decimal = ANNUAL_LIMIT,
    declaration_id: str | None = None,
) -> QuotaDecision:
    """Would a transaction of ``amount`` fit? Pass ``declaration_id`` to recognise a repeat.

    A declaration that already counted is allowed and changes nothing (its release receipt
    came twice).
    """
    ledger = list(entries)
    before = remaining(ledger, buyer_key, year, limit)
    held = _fold(ledger).get(declaration_id) if declaration_id is not None else None
    if held is not None and not held.restored:
        return QuotaDecision(
            True,
            before,
            before,
            f"Declaration {declaration_id} is already counted in the annual quota.",
            "该申报已计入年度交易限值。",
        )
    if amount <= before:
        return QuotaDecision(
            True,
            before,
            before - amount,
            f"Within the annual quota: {before} CNY left of {limit} for {year}, "
            f"{before - amount} after this transaction of {amount}.",
            f"未超过个人年度交易限值：{year}年剩余{before}元，本次{amount}元后剩余"
            f"{before - amount}元。",
        )
    return QuotaDecision(
        False,
        before,
        before,
        f"Over the annual quota: this transaction of {amount} CNY exceeds the {before} CNY "
        f"left of the buyer's {limit} CNY for {year}.",
        f"超过个人年度交易限值：本次{amount}元超过{year}年剩余额度{before}元"
        f"（年度限值{limit}元）。",
    )
