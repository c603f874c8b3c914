"""The personal annual quota: counted on release, restored once, keyed without the ID number."""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal

import pytest

from gateway.domain.quota import (
    ANNUAL_LIMIT,
    QuotaEntry,
    QuotaKind,
    buyer_key,
    check,
    counted_for,
    quota_year,
    remaining,
    used,
)

D = Decimal
SECRET = b"0123456789abcdef-test-secret"
ID = "11010519491231002X"
BUYER = buyer_key("1", ID, SECRET)
OTHER = buyer_key("1", "110105194912310037", SECRET)


def release(decl: str, amount: str, year: int = 2026, buyer: str = BUYER) -> QuotaEntry:
    return QuotaEntry(buyer, year, D(amount), QuotaKind.RELEASE, decl)


def restore(decl: str, amount: str, year: int = 2026, buyer: str = BUYER) -> QuotaEntry:
    return QuotaEntry(buyer, year, D(amount), QuotaKind.RESTORE, decl)


# --- The buyer key ------------------------------------------------------------------------


def test_the_buyer_key_is_an_hmac_that_never_contains_the_id_number():
    assert len(BUYER) == 64 and all(c in "0123456789abcdef" for c in BUYER)
    assert ID not in BUYER and ID.lower() not in BUYER and ID[:17] not in BUYER
    assert buyer_key("1", ID, SECRET) == BUYER  # stable: the same buyer, the same key


def test_the_buyer_key_ignores_case_and_spaces_but_not_the_secret_or_the_id_type():
    assert buyer_key("1", " 11010519491231002x ", SECRET) == BUYER
    assert buyer_key("1", ID, SECRET + b"!") != BUYER
    assert buyer_key("2", ID, SECRET) != BUYER
    assert OTHER != BUYER


def test_a_short_secret_is_refused():
    with pytest.raises(ValueError):
        buyer_key("1", ID, b"short")


# --- The year -----------------------------------------------------------------------------


def test_the_year_is_the_release_year_in_china_local_time():
    # 31 December 2026, 16:30 UTC is 1 January 2027, 00:30 in Beijing: it counts in 2027.
    assert quota_year(dt.datetime(2026, 12, 31, 16, 30, tzinfo=dt.UTC)) == 2027
    assert quota_year(dt.datetime(2026, 12, 31, 15, 59, tzinfo=dt.UTC)) == 2026


def test_a_naive_release_time_is_refused_rather_than_guessed():
    with pytest.raises(ValueError):
        quota_year(dt.datetime(2026, 12, 31, 16, 30))


# --- Counting and restoring ---------------------------------------------------------------


def test_a_new_buyer_has_the_whole_26000():
    assert remaining([], BUYER, 2026) == D("26000") == ANNUAL_LIMIT


def test_releases_count_and_cancels_restore_a_worked_example():
    # 26,000 - 5,000.00 - 20,000.50 = 999.50; cancelling the 5,000.00 one gives 5,999.50.
    ledger = [release("A", "5000.00"), release("B", "20000.50")]
    assert used(ledger, BUYER, 2026) == D("25000.50")
    assert remaining(ledger, BUYER, 2026) == D("999.50")
    ledger.append(restore("A", "5000.00"))
    assert remaining(ledger, BUYER, 2026) == D("5999.50")


def test_a_second_restore_of_the_same_declaration_changes_nothing():
    ledger = [release("A", "300.00"), restore("A", "300.00")]
    assert remaining([*ledger, restore("A", "300.00")], BUYER, 2026) == D("26000.00")
    assert remaining([release("B", "100"), *ledger, restore("A", "300")], BUYER, 2026) == D(
        "25900.00"
    )


def test_a_restore_for_a_declaration_that_never_counted_changes_nothing():
    ledger = [release("A", "300.00"), restore("never-released", "1000.00")]
    assert remaining(ledger, BUYER, 2026) == D("25700.00")


def test_a_restore_before_its_release_does_not_count_in_advance():
    assert remaining([restore("A", "300"), release("A", "300")], BUYER, 2026) == D("25700")


def test_a_replayed_release_receipt_counts_once():
    ledger = [release("A", "300.00"), release("A", "300.00")]
    assert remaining(ledger, BUYER, 2026) == D("25700.00")
    assert counted_for(ledger, "A") == D("300.00")


def test_a_return_next_january_restores_the_year_and_buyer_it_counted_against():
    ledger = [release("A", "800.00", year=2026), restore("A", "800.00", year=2027)]
    assert remaining(ledger, BUYER, 2026) == D("26000.00")
    assert remaining(ledger, BUYER, 2027) == D("26000.00")


def test_a_partial_return_restores_part_and_never_more_than_counted():
    assert remaining([release("A", "800"), restore("A", "300")], BUYER, 2026) == D("25500")
    assert remaining([release("A", "800"), restore("A", "9999")], BUYER, 2026) == D("26000")


def test_other_buyers_and_other_years_do_not_share_a_quota():
    ledger = [release("A", "20000", buyer=OTHER), release("B", "20000", year=2025)]
    assert remaining(ledger, BUYER, 2026) == D("26000")
    assert remaining(ledger, OTHER, 2026) == D("6000")


def test_remaining_is_never_negative_even_if_the_ledger_overshoots():
    assert remaining([release("A", "30000")], BUYER, 2026) == D("0.00")


def test_entries_accept_the_kind_as_text_and_refuse_negative_amounts():
    assert QuotaEntry(BUYER, 2026, D("1"), "release", "A").kind == QuotaKind.RELEASE  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        QuotaEntry(BUYER, 2026, D("-1"), QuotaKind.RELEASE, "A")
    with pytest.raises(ValueError):
        QuotaEntry(BUYER, 2026, D("1"), "refund", "A")  # type: ignore[arg-type]


# --- Checking -----------------------------------------------------------------------------


def test_a_transaction_that_fits_exactly_is_allowed():
    d = check([release("A", "25000")], BUYER, 2026, D("1000"))
    assert (d.allowed, d.remaining_before, d.remaining_after) == (True, D("1000"), D("0"))
    assert "1000" in d.reason_en and "年度交易限值" in d.reason_zh


def test_a_transaction_over_what_is_left_is_refused_with_the_numbers_in_both_languages():
    d = check([release("A", "25000")], BUYER, 2026, D("1000.01"))
    assert (d.allowed, d.remaining_before, d.remaining_after) == (False, D("1000"), D("1000"))
    assert "1000.01" in d.reason_en and "1000" in d.reason_en
    assert "超过个人年度交易限值" in d.reason_zh and "1000.01" in d.reason_zh


def test_checking_a_declaration_that_already_counted_is_allowed_and_changes_nothing():
    ledger = [release("A", "25000")]
    d = check(ledger, BUYER, 2026, D("25000"), declaration_id="A")
    assert (d.allowed, d.remaining_before, d.remaining_after) == (True, D("1000"), D("1000"))


def test_a_custom_limit_can_be_passed():
    assert not check([], BUYER, 2026, D("101"), limit=D("100")).allowed


# --- Properties ---------------------------------------------------------------------------


def _random_ledger(rnd: random.Random, steps: int) -> list[QuotaEntry]:
    """Releases that respect check(), and cancels/returns (some repeated, some bogus)."""
    ledger: list[QuotaEntry] = []
    for n in range(steps):
        buyer = rnd.choice([BUYER, OTHER])
        year = rnd.choice([2026, 2027])
        if rnd.random() < 0.6:
            amount = D(rnd.randint(1, 800_000)) / 100
            if check(ledger, buyer, year, amount).allowed:
                ledger.append(QuotaEntry(buyer, year, amount, QuotaKind.RELEASE, f"D{n}"))
        else:
            target = rnd.choice(ledger) if ledger else None
            decl = target.declaration_id if target and rnd.random() < 0.8 else f"X{n}"
            ledger.append(
                QuotaEntry(buyer, year, D(rnd.randint(0, 900_000)) / 100, QuotaKind.RESTORE, decl)
            )
    return ledger


def test_when_checks_are_respected_remaining_never_goes_negative_nor_used_over_the_limit():
    rnd = random.Random(26000)
    for _ in range(60):
        ledger: list[QuotaEntry] = []
        for entry in _random_ledger(rnd, 40):
            ledger.append(entry)
            for buyer in (BUYER, OTHER):
                for year in (2026, 2027):
                    assert D(0) <= remaining(ledger, buyer, year) <= ANNUAL_LIMIT
                    assert used(ledger, buyer, year) <= ANNUAL_LIMIT


def test_repeating_any_restore_changes_nothing():
    rnd = random.Random(623)
    for _ in range(100):
        ledger = _random_ledger(rnd, 30)
        restores = [e for e in ledger if e.kind == QuotaKind.RESTORE]
        if not restores:
            continue
        again = [*ledger, rnd.choice(restores)]
        for buyer in (BUYER, OTHER):
            for year in (2026, 2027):
                assert remaining(again, buyer, year) == remaining(ledger, buyer, year)


def test_a_release_followed_by_its_full_restore_leaves_remaining_unchanged():
    rnd = random.Random(625)
    for i in range(100):
        ledger = _random_ledger(rnd, 20)
        before = remaining(ledger, BUYER, 2026)
        amount = min(before, D(rnd.randint(0, 500_000)) / 100)
        after = [*ledger, release(f"new{i}", str(amount)), restore(f"new{i}", str(amount))]
        assert remaining(after, BUYER, 2026) == before
        assert remaining(after, OTHER, 2026) == remaining(ledger, OTHER, 2026)
