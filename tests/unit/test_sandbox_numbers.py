"""The sandbox's numbers stay unique across restarts, as the real authority's do."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from sandbox import numbers
from sandbox.numbers import CHINA, _Sequence


def test_a_restarted_sequence_continues_after_every_number_it_handed_out(tmp_path: Path):
    state = tmp_path / "sandbox" / "sequence"
    first = _Sequence()
    first.use_file(state)
    handed_out = [first.next() for _ in range(numbers.BLOCK + 5)]
    restarted = _Sequence()  # a new process: the old one may have died at any point
    restarted.use_file(state)
    again = [restarted.next() for _ in range(10)]
    assert len(set(handed_out)) == len(handed_out)
    assert min(again) > max(handed_out)


def test_numbers_have_their_public_formats():
    at = datetime(2026, 12, 1, 9, 30, tzinfo=CHINA)
    pre, invt = numbers.pre_no(at), numbers.invt_no("4601", at)
    assert len(pre) == 18 and pre.startswith("B20261201") and pre[9:].isdigit()
    assert len(invt) == 18 and invt.startswith("46012026I") and invt[9:].isdigit()
