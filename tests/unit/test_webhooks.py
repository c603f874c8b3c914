"""Webhooks, pure parts: the signature a receiver checks, URL and event rules, retries, and
the horizon that keeps a cursor from stepping over an uncommitted event."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.webhooks import (
    RetryPolicy,
    SignatureMismatch,
    event_violations,
    sign,
    url_violations,
    verify,
    wants,
)
from gateway.persistence.event_log import safe_horizon

SECRET = "whsec_test"


def test_the_signature_is_an_hmac_of_timestamp_dot_body_that_a_receiver_can_recompute():
    body = b'{"id":"evt_1"}'
    header = sign(SECRET, 1700000000, body)
    expected = hmac.new(SECRET.encode(), b"1700000000." + body, hashlib.sha256).hexdigest()
    assert header == f"t=1700000000,v1={expected}"
    assert verify(SECRET, header, body, now=1700000100) == 1700000000


@pytest.mark.parametrize(
    "header, body, now",
    [
        ("t=1700000000,v1=00", b"{}", 1700000000),  # wrong mac
        (sign(SECRET, 1700000000, b"{}"), b"{} ", 1700000000),  # body changed
        (sign("whsec_other", 1700000000, b"{}"), b"{}", 1700000000),  # other secret
        (sign(SECRET, 1700000000, b"{}"), b"{}", 1700000301),  # too old: a replay
        (
            sign(SECRET, 1700000000, b"{}").replace("t=1700000000", "t=1700000001"),
            b"{}",
            1700000001,
        ),
        ("v1=abc", b"{}", 1700000000),  # no timestamp
        ("", b"{}", 1700000000),
    ],
)
def test_a_signature_that_does_not_match_is_refused(header, body, now):
    with pytest.raises(SignatureMismatch):
        verify(SECRET, header, body, now=now)


def test_a_receiver_accepts_any_matching_v1_during_a_secret_rotation():
    good = sign(SECRET, 1700000000, b"{}")
    rotated = good.replace(",v1=", ",v1=deadbeef,v1=")
    assert verify(SECRET, rotated, b"{}", now=1700000000) == 1700000000


@pytest.mark.parametrize(
    "url, code",
    [
        (None, "webhook.url.required"),
        ("", "webhook.url.required"),
        ("ftp://h.example/x", "webhook.url.scheme"),
        ("javascript:alert(1)", "webhook.url.scheme"),
        ("https://", "webhook.url.host"),
        ("https://user:pw@h.example/", "webhook.url.credentials"),
        ("https://h.example:70000/", "webhook.url.invalid"),
        ("https://h.example/a b", "webhook.url.invalid"),
        ("https://h.example/\x00", "webhook.url.invalid"),
        ("https://h.example/\ud800", "webhook.url.invalid"),
        ("https://h.example/#frag", "webhook.url.fragment"),
        ("https://h.example/" + "x" * 2000, "webhook.url.too_long"),
    ],
)
def test_only_plain_http_and_https_urls_can_receive_webhooks(url, code):
    assert [v.code for v in url_violations(url)] == [code]
    assert all(v.path == "/url" for v in url_violations(url))


def test_good_urls_pass():
    for url in ("https://h.example/hook", "http://127.0.0.1:8080/h?x=1", "https://[::1]/h"):
        assert url_violations(url) == []


def test_events_must_be_known_types_each_named_by_its_position():
    assert event_violations(["declaration.status_changed", "declaration.released"]) == []
    assert [v.path for v in event_violations(["declaration.released", "x", None])] == [
        "/events/1",
        "/events/2",
    ]
    assert [v.code for v in event_violations("declaration.released")] == ["webhook.events.required"]


def test_a_subscription_wants_every_change_or_changes_into_the_statuses_it_names():
    assert wants(["declaration.status_changed"], "accepted")
    assert wants(["declaration.released"], "released")
    assert not wants(["declaration.released"], "under_review")


def test_retries_back_off_exponentially_with_jitter_up_to_a_cap_and_stop_at_the_max_age():
    policy = RetryPolicy(base=10, cap=3600, max_age=86400)
    for attempt, ceiling in [
        (1, 10),
        (2, 20),
        (3, 40),
        (8, 1280),
        (9, 2560),
        (10, 3600),
        (30, 3600),
    ]:
        for _ in range(20):
            assert ceiling / 2 <= policy.delay(attempt) <= ceiling
    assert policy.next_try(3, age=100) is not None
    assert policy.next_try(30, age=86400 - 1) is None  # the next try would be past 24 h


T0 = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def _tail(ids: list[int], young_from: int) -> list[tuple[int, datetime]]:
    """Events with these ids; those from ``young_from`` on were written just now."""
    return [(i, T0 + timedelta(seconds=30 if i >= young_from else 0)) for i in ids]


def test_the_horizon_is_the_newest_id_when_the_log_has_no_gaps():
    assert safe_horizon(_tail([1, 2, 3, 4], 3), T0 + timedelta(seconds=10), full=False) == 4
    assert safe_horizon([], T0, full=False) == 0


def test_the_horizon_stops_before_a_young_gap_whose_transaction_may_still_commit():
    # id 3 is taken by a transaction not yet committed; 4 committed a moment ago.
    assert safe_horizon(_tail([1, 2, 4], 4), T0 + timedelta(seconds=10), full=False) == 2


def test_an_old_gap_is_a_rolled_back_transaction_and_is_stepped_over():
    assert safe_horizon(_tail([1, 2, 4, 5], 99), T0 + timedelta(seconds=10), full=False) == 5


def test_a_window_of_only_young_events_keeps_the_horizon_behind_it():
    assert safe_horizon(_tail([7, 8, 9], 0), T0 + timedelta(seconds=10), full=True) == 6
