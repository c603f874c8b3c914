"""Personal data at rest: sealing, opening, key ids, rotation, plaintext from before."""

from __future__ import annotations

import base64
import os
import stat
import time

import pytest

from gateway.persistence.data_keys import (
    DataKeyError,
    DataKeyRing,
    key_id_of,
    load_ring,
    new_key_line,
    prepend_key,
)

XML = b'<?xml version="1.0" encoding="UTF-8"?><ceb:CEB621Message>' + b"x" * 10_000 + b"</x>"


def ring(*kids: str) -> DataKeyRing:
    return DataKeyRing(tuple((k, os.urandom(32)) for k in kids))


def test_a_sealed_blob_opens_to_the_exact_bytes_and_names_its_key() -> None:
    r = ring("k1")
    blob = r.seal(XML, "messages.raw_xml:msg_1")
    assert XML not in blob and blob[0] == 1
    assert key_id_of(blob) == "k1"
    assert r.open(blob, "messages.raw_xml:msg_1") == XML


def test_a_blob_moved_to_another_row_or_column_does_not_open() -> None:
    r = ring("k1")
    blob = r.seal(XML, "messages.raw_xml:msg_1")
    for elsewhere in ("messages.raw_xml:msg_2", "messages.signed_xml:msg_1"):
        with pytest.raises(DataKeyError):
            r.open(blob, elsewhere)


def test_a_flipped_bit_or_a_relabelled_key_id_is_refused() -> None:
    r = ring("k1", "k2")
    blob = bytearray(r.seal(XML, "c"))
    blob[-1] ^= 1
    with pytest.raises(DataKeyError):
        r.open(bytes(blob), "c")
    relabelled = bytearray(r.seal(XML, "c"))
    relabelled[3] = ord("2")  # k1 -> k2
    with pytest.raises(DataKeyError):
        r.open(bytes(relabelled), "c")


def test_plaintext_from_before_encryption_reads_as_is() -> None:
    for legacy in (XML, b"\xef\xbb\xbf<x/>", "<x/>".encode("utf-16"), b""):
        assert key_id_of(legacy) is None
        assert ring("k1").open(legacy, "c") == legacy


def test_after_rotation_the_new_key_seals_and_the_old_one_still_opens() -> None:
    old = ring("old")
    blob = old.seal(XML, "c")
    rotated = DataKeyRing((("new", os.urandom(32)), *old.keys))
    assert rotated.open(blob, "c") == XML
    assert key_id_of(rotated.seal(XML, "c")) == "new"
    with pytest.raises(DataKeyError, match="not configured"):
        ring("new").open(blob, "c")


def test_the_configured_list_is_parsed_first_key_first_and_bad_keys_are_named() -> None:
    a, b = new_key_line(), new_key_line()
    parsed = DataKeyRing.parse(f"{a},{b}")
    assert parsed.primary == a.partition(":")[0] and len(parsed.keys) == 2
    for bad, why in (
        ("k1", "key-id:base64"),
        ("k1:***", "base64"),
        ("k1:" + base64.b64encode(b"short").decode(), "32 bytes"),
        ("k/1:" + base64.b64encode(os.urandom(32)).decode(), "key id"),
        ("", "empty"),
    ):
        with pytest.raises(DataKeyError, match=why):
            DataKeyRing.parse(bad)


def test_the_default_ring_is_made_once_in_the_data_dir_0600_and_rotates_there(
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    path = tmp_path / "data-keys"
    first = load_ring("", path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_ring("", path) == first
    blob = first.seal(XML, "c")
    kid = prepend_key(path)
    again = load_ring("", path)
    assert again.primary == kid != first.primary
    assert again.open(blob, "c") == XML
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_ring(new_key_line(), path).primary != kid  # configuration wins


def test_sealing_10_kb_costs_microseconds() -> None:
    r, n = ring("k1"), 2000
    start = time.perf_counter()
    for _ in range(n):
        r.open(r.seal(XML, "messages.raw_xml:msg_1"), "messages.raw_xml:msg_1")
    per_op = (time.perf_counter() - start) / n
    assert per_op < 0.001, per_op  # seal + open of 10 KB, generously bounded


def test_processes_starting_together_agree_on_one_default_key(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import threading

    path, rings, errors = tmp_path / "data-keys", [], []

    def start() -> None:
        try:
            rings.append(load_ring("", path))
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(16)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors and len({r.primary for r in rings}) == 1
    assert [p.name for p in tmp_path.iterdir()] == ["data-keys"]  # no temp file left
