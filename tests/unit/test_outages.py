"""Planned outage notices in the domain: when a delivery waits, what users are shown."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from gateway.domain.errors import MalformedRequest
from gateway.domain.outages import OutageNotice, check_window, hold_until, visible

T0 = datetime(2026, 12, 1, 2, 0, tzinfo=UTC)


def notice(authority: str, start_h: float, end_h: float, nid: str = "out_1") -> OutageNotice:
    return OutageNotice(
        nid, authority, T0 + timedelta(hours=start_h), T0 + timedelta(hours=end_h), "upgrade"
    )


def test_a_delivery_inside_the_window_waits_for_its_end_and_one_outside_goes_now():
    n = notice("customs", 0, 2)
    assert hold_until([n], "customs", T0 + timedelta(minutes=30)) == n.ends_at
    assert hold_until([n], "customs", T0 - timedelta(seconds=1)) is None
    assert hold_until([n], "customs", n.ends_at) is None  # the end is open: it goes then
    assert hold_until([n], "inspection", T0 + timedelta(minutes=30)) is None


def test_back_to_back_and_overlapping_windows_chain_to_the_last_end():
    first, second = notice("customs", 0, 2, "a"), notice("customs", 2, 3, "b")
    overlapping = notice("customs", 2.5, 5, "c")
    unrelated = notice("customs", 8, 9, "d")
    at = T0 + timedelta(hours=1)
    assert hold_until([unrelated, overlapping, second, first], "customs", at) == overlapping.ends_at


def test_visible_notices_are_upcoming_or_active_soonest_first():
    ended, active, later = (
        notice("port", -3, -1, "a"),
        notice("customs", -1, 1, "b"),
        notice("inspection", 5, 6, "c"),
    )
    assert visible([later, ended, active], T0) == [active, later]
    assert [n.state(T0) for n in (ended, active, later)] == ["ended", "active", "upcoming"]


def test_the_text_says_what_happens_to_submissions_and_the_headline_is_ascii():
    n = notice("customs", 0, 2)
    assert n.headline().isascii()
    assert "2026-12-01T02:00:00Z to 2026-12-01T04:00:00Z" in n.headline()
    assert "accepted and delivered when it ends" in n.text() and n.text().endswith("(upgrade)")


@pytest.mark.parametrize(
    ("authority", "start", "end", "note", "says"),
    [
        ("tax office", T0, T0 + timedelta(hours=1), "", "authority must be one of"),
        ("customs", T0, T0, "", "must end after it starts"),
        ("customs", T0, T0 - timedelta(hours=1), "", "must end after it starts"),
        ("customs", T0, T0 + timedelta(days=15), "", "at most 14 days"),
        ("customs", T0.replace(tzinfo=None), T0 + timedelta(hours=1), "", "time zone"),
        ("customs", T0, T0 + timedelta(hours=1), "x" * 501, "longer than 500"),
    ],
)
def test_windows_no_operator_means_are_refused(authority, start, end, note, says):
    with pytest.raises(MalformedRequest, match=says):
        check_window(authority, start, end, note)
