"""Retail-import tax and the per-person annual quota, at the moments they matter.

On acceptance the gateway estimates each inventory list's tax and checks the buyer's
remaining annual quota (refusing a list that would exceed it, in plain words); on release the
list counts against the quota; a cancellation or return gives it back; customs' tax bill
(CEB816) is kept next to the estimate, and a difference is shown in the timeline.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, select

from gateway.domain.errors import BusinessRuleViolation, Violation
from gateway.domain.quota import QuotaEntry, QuotaKind, buyer_key, check, counted_for, quota_year
from gateway.domain.rules import DocumentView
from gateway.domain.tax import (
    TaxAssessment,
    TaxMode,
    assess,
    choose_mode,
    differences,
    from_tax_bill,
)
from gateway.persistence import repository as repo
from gateway.persistence import tables as t
from gateway.services.runtime import Runtime

TAXED_TYPES = frozenset({"CEB621"})


def estimate(rt: Runtime, view: DocumentView) -> TaxAssessment | None:
    """The gateway's estimate of a list's tax (None for documents that are not taxed)."""
    if view.message_type not in TAXED_TYPES:
        return None
    try:
        first = assess(view, rt.tax_rates)
        mode = choose_mode(view, first.dutiable_value)
        return first if mode == TaxMode.RETAIL else assess(view, rt.tax_rates, mode)
    except ValueError:
        return None  # the rules layer has already said what is wrong with the amounts


def buyer_of(rt: Runtime, view: DocumentView) -> str | None:
    """The buyer's quota key (an HMAC of the ID, never the ID)."""
    number = view.head.get("buyerIdNumber")
    if view.message_type not in TAXED_TYPES or not number:
        return None
    return buyer_key(view.head.get("buyerIdType", "1"), number, rt.quota_secret)


# Built once: every taxed list of every submission reads its buyer's ledger.
_LEDGER = (
    select(t.quota_ledger)
    .where(t.quota_ledger.c.buyer_key == bindparam("b_key"))
    .order_by(t.quota_ledger.c.id)
)


def _ledger(conn: Any, key: str) -> list[QuotaEntry]:
    rows = conn.execute(_LEDGER, {"b_key": key}).mappings()
    return [
        QuotaEntry(r["buyer_key"], r["year"], Decimal(r["amount"]), r["kind"], r["declaration_id"])
        for r in rows
    ]


def check_quota(
    rt: Runtime,
    conn: Any,
    spec_root: str,
    document: str,
    plans: list[tuple[int, str | None, TaxAssessment | None]],
    at: datetime,
) -> None:
    """Refuse the message if a list would take its buyer over the annual quota (this message's
    lists count together)."""
    pending: dict[str, Decimal] = {}
    problems = []
    for position, key, tax in plans:
        if key is None or tax is None:
            continue
        amount = tax.dutiable_value
        ledger = _ledger(conn, key)
        already = pending.get(key, Decimal(0))
        decision = check(ledger, key, quota_year(at), amount + already, limit=rt.annual_quota)
        if not decision.allowed:
            problems.append(
                Violation(
                    f"/{spec_root}/{document}[{position}]/InventoryHead/buyerIdNumber",
                    "rule.quota.annual_limit",
                    decision.reason_en,
                    message_zh=decision.reason_zh,
                )
            )
        pending[key] = already + amount
    if problems:
        raise BusinessRuleViolation(
            f"{len(problems)} list(s) exceed the buyer's annual quota.", violations=problems
        )


def count_release(conn: Any, declaration: Any, at: datetime) -> None:
    """The list counts against its buyer's quota (once, whatever repeats)."""
    key, tax = declaration["buyer_key"], (declaration["tax"] or {}).get("estimate")
    if not key or not tax:
        return
    amount = TaxAssessment.from_dict(tax).dutiable_value
    if repo.quota_entry_exists(conn, declaration["id"], QuotaKind.RELEASE.value):
        return
    repo.insert_quota_entry(
        conn,
        buyer_key=key,
        year=quota_year(at),
        amount=str(amount),
        kind=QuotaKind.RELEASE.value,
        declaration_id=declaration["id"],
        at=at,
    )


def restore(conn: Any, declaration: Any, at: datetime) -> Decimal:
    """Give back what a cancelled or returned list counted (once); returns the amount."""
    key = declaration["buyer_key"]
    if not key or repo.quota_entry_exists(conn, declaration["id"], QuotaKind.RESTORE.value):
        return Decimal(0)
    ledger = _ledger(conn, key)
    amount = counted_for(ledger, declaration["id"])
    if amount <= 0:
        return Decimal(0)
    year = next(e.year for e in ledger if e.declaration_id == declaration["id"])
    repo.insert_quota_entry(
        conn,
        buyer_key=key,
        year=year,
        amount=str(amount),
        kind=QuotaKind.RESTORE.value,
        declaration_id=declaration["id"],
        at=at,
    )
    return amount


def record_tax_bill(
    conn: Any, head: dict[str, str], lines: list[dict[str, str]], at: datetime
) -> str | None:
    """Keep customs' CEB816 bill on the list it taxes (by invtNo); returns its id."""
    invt_no = head.get("invtNo", "")
    decl = repo.find_by_invt_no(conn, "CEB621", invt_no) if invt_no else None
    if decl is None:
        return None
    bill = from_tax_bill(head, lines)
    tax = dict(decl["tax"] or {})
    tax["bill"] = {**bill.as_dict(), "taxNo": head.get("taxNo")}
    repo.update_declaration(conn, decl["id"], tax=tax)
    info = f"tax bill {head.get('taxNo', '')}: {bill.total} CNY"
    if tax.get("estimate"):
        diffs = differences(TaxAssessment.from_dict(tax["estimate"]), bill)
        if diffs:
            info += "; differs from the gateway's estimate: " + ", ".join(
                f"{d.field}{f' line {d.gnum}' if d.gnum else ''} {d.estimated} -> {d.billed}"
                for d in diffs[:5]
            )
    repo.insert_events(
        conn,
        [
            dict(
                declaration_id=decl["id"],
                at=at,
                kind="tax_bill",
                source="customs",
                status=decl["status"],
                info=info[:2000],
                data={"taxNo": head.get("taxNo"), "total": str(bill.total)},
            )
        ],
    )
    return str(decl["id"])
