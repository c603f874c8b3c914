"""The chaos runs' history checker can fail: each count and each invariant, on histories
made to break it (no services needed)."""

from __future__ import annotations

from collections import Counter
from typing import Any

from tests.faults.history import History, _tally, check_timelines


def _status(a: str, b: str) -> dict[str, Any]:
    return {"kind": "status", "info": f"{a} -> {b}"}


def _body(status: str, *events: dict[str, Any]) -> dict[str, Any]:
    return {"status": status, "events": list(events)}


CLEARED = (
    _status("accepted", "submitted"),
    _status("submitted", "under_review"),
    {"kind": "release_queued", "info": "", "status": "released"},  # in the same transaction
    _status("under_review", "released"),
    {"kind": "release_sent", "info": "", "status": "released"},
    {"kind": "gate_out", "info": "left the terminal gate", "status": "closed"},
)


def test_each_key_is_counted_lost_unexpected_twice_resent_or_recovered():
    h = History()
    expected = {"g-ok", "g-lost", "g-twice", "g-recovered"}
    applied = Counter({"g-ok": 1, "g-twice": 2, "g-recovered": 1, "g-stranger": 1})
    sends = {"g-ok": 1, "g-lost": 3, "g-twice": 2, "g-recovered": 4}
    _tally(h, "customs", expected, applied, sends)
    counts = h.report()["per_authority"]["customs"]
    assert counts == {
        "keys": 4,
        "lost": 1,
        "unexpected": 1,
        "applied_twice": 1,
        "resent": 3,  # g-lost, g-twice, g-recovered
        "recovered": 1,  # resent and applied once in the end
    }
    assert h.examples["lost"] == ["customs: g-lost"]
    assert h.examples["unexpected"] == ["customs: g-stranger"]
    assert h.total("applied_twice") == 1


def test_a_clean_timeline_breaks_nothing():
    h = History()
    opened = {"kind": "inspection", "info": "joint inspection opened at the request of customs",
              "status": "inspection"}  # fmt: skip
    # Found by the first `make prove` with inspections: in one transaction the inspection
    # opened (the new status), the receipt (the old one), then the status event.
    selected = (
        opened,
        {"kind": "receipt", "info": "receipt 500", "status": "accepted"},
        _status("accepted", "inspection"),
        _status("inspection", "under_review"),
    )
    # And by the second: a first send submits with no status event of its own (its event
    # carries the old status; the next one the new).
    first_send = (
        {"kind": "sent", "info": "message sent to customs", "status": "accepted"},
        {"kind": "sent", "info": "message sent to inspection", "status": "submitted"},
        _status("submitted", "under_review"),
    )
    check_timelines(
        h,
        {
            "d1": _body("closed", *CLEARED),
            "d2": _body("closed", *selected, *CLEARED[2:]),
            "d3": _body("closed", *first_send, *CLEARED[2:]),
        },
    )
    assert not any(h.violations.values()), dict(h.violations)
    assert h.inspected == 1


def test_a_forbidden_transition_a_gap_and_a_wrong_end_are_each_found():
    h = History()
    check_timelines(
        h,
        {
            "back": _body("released", _status("accepted", "released"),
                          _status("released", "under_review")),
            "gap": _body("closed", _status("accepted", "submitted"),
                         _status("under_review", "released")),
            "end": _body("closed", _status("accepted", "released")),
            "nonsense": _body("closed", {"kind": "status", "info": "accepted -> sideways"}),
            "reopened": _body("under_review", *CLEARED,
                              {"kind": "gate_out", "info": "", "status": "under_review"}),
        },
    )  # fmt: skip
    found = {v[0] for v in h.violations["transitions"]}
    assert found == {"back", "gap", "end", "nonsense", "reopened"}


def test_two_releases_or_two_joint_inspections_are_found():
    h = History()
    opened = {"kind": "inspection", "info": "joint inspection opened at the request of customs"}
    release = {"kind": "release_queued", "info": ""}
    check_timelines(
        h,
        {
            "two-releases": _body("closed", *CLEARED, release),
            "two-inspections": _body("closed", opened, opened, *CLEARED),
        },
    )
    assert [v[0] for v in h.violations["releases_per_consignment"]] == ["two-releases"]
    assert h.violations["joint_inspections_opened"] == [("two-inspections", 2)]
