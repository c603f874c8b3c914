"""The leak scanner can fail (RELIABILITY T9): a buyer's ID number or phone planted in a
file, in Redis (string, hash, list, set, sorted set), in a database row or in what the
sandbox port was sent is found; a masked copy is not; the buyers of a CEB621 are read back.

A scanner that finds nothing proves nothing unless it is seen to find something."""

from __future__ import annotations

import random
import re
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from gateway.examples import fresh_ceb621, synthetic_id_number, synthetic_phone
from tests.faults.leak import database_bytes, port_payloads
from tests.leak_scan import (
    buyer_fields,
    buyer_secrets,
    files_bytes,
    find_leaks,
    mask,
    redis_bytes,
)
from tests.sandbox.harness import World, manifest, sign, start_world

ID = "11010519491231002X"
PHONE = "13912345678"
MASKED_ID = "110***********1234"  # what a masked copy of an ID number looks like
SECRETS = {ID, PHONE}


@pytest.fixture
def scan_redis(redis_url: str) -> Iterator[str]:
    """Its own database of the session's Redis, empty: the scan reads every key in it."""
    url = redis_url.rsplit("/", 1)[0] + "/9"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


# ------------------------------------------------------------------ files


def test_a_secret_planted_in_a_file_deep_in_the_data_dir_is_found(tmp_path: Path) -> None:
    deep = tmp_path / "logs" / "old"
    deep.mkdir(parents=True)
    (deep / "worker.log").write_bytes(b"INFO declared for buyer " + ID.encode() + b" ok\n")
    (tmp_path / "gateway.db-wal").write_bytes(b"\x00\x01" + PHONE.encode() + b"\xff")
    (tmp_path / "clean.log").write_text("buyer 110105********002X phone 139****5678\n")
    assert sorted(find_leaks(SECRETS, files_bytes(tmp_path))) == [
        (str(tmp_path / "gateway.db-wal"), PHONE),
        (str(deep / "worker.log"), ID),
    ]


def test_masked_copies_are_not_leaks_and_each_secret_is_reported_once_per_place() -> None:
    places = {
        "masked": f"{MASKED_ID} 110105********002X 139****5678 {mask(ID)} {mask(PHONE)}".encode(),
        "twice": f"{PHONE} and again {PHONE},{PHONE}".encode(),
    }
    assert find_leaks(SECRETS, places) == [("twice", PHONE)]
    assert mask(ID) == "110*************2X" and mask(PHONE) == "139******78"


def test_a_secret_inside_another_or_in_lowercase_is_still_found() -> None:
    inner = ID[2:13]  # an 11-character secret inside the ID number
    places = {"log": ID.lower().encode(), "dump": f"x{ID}{PHONE}1".encode()}
    assert sorted(find_leaks({ID, PHONE, inner}, places)) == sorted(
        [("dump", ID), ("dump", inner), ("dump", PHONE), ("log", ID), ("log", inner)]
    )
    assert find_leaks(set(), places) == [] and find_leaks(SECRETS, {}) == []


def test_among_20000_secrets_over_a_megabyte_only_the_planted_ones_are_found() -> None:
    rng = random.Random(7)
    secrets = {synthetic_id_number(rng) for _ in range(10_000)}
    secrets |= {synthetic_phone(rng) for _ in range(10_000)}
    planted = sorted(secrets)[::4000]
    noise = "".join(rng.choices("0123456789X <>/abc-:", k=1_000_000))
    text = noise[:300_000] + planted[0] + noise[300_000:] + "".join(planted[1:])
    found = find_leaks(secrets, {"blob": text.encode()})
    assert {s for _w, s in found} >= set(planted)
    assert all(s in text for _w, s in found)  # nothing that is not there


# ------------------------------------------------------------------ Redis


def test_a_secret_in_any_kind_of_redis_value_is_found(scan_redis: str) -> None:
    r = redis.Redis.from_url(scan_redis)
    r.set("k:string", f"job for {ID}")
    r.hset("k:hash", "buyer", PHONE)
    r.rpush("k:list", b"a", f"<buyerIdNumber>{ID}</buyerIdNumber>".encode())
    r.sadd("k:set", PHONE)
    r.zadd("k:zset", {ID: 1.0})
    r.set(f"k:{PHONE}", b"the secret is in the key name")
    r.close()
    content = redis_bytes(scan_redis)
    assert sorted(find_leaks(SECRETS, {"redis": content})) == [("redis", ID), ("redis", PHONE)]
    for key in (b"k:string", b"k:hash", b"k:list", b"k:set", b"k:zset"):
        assert key in content


@pytest.mark.parametrize("kind", ["string", "hash", "list"])
def test_each_redis_kind_alone_is_enough_to_fail(scan_redis: str, kind: str) -> None:
    r = redis.Redis.from_url(scan_redis)
    r.set("other", MASKED_ID)
    if kind == "string":
        r.set("k", PHONE)
    elif kind == "hash":
        r.hset("k", mapping={"a": "1", "phone": PHONE})
    else:
        r.rpush("k", "x", PHONE)
    r.close()
    assert find_leaks(SECRETS, {"redis": redis_bytes(scan_redis)}) == [("redis", PHONE)]


# ------------------------------------------------------------------ database rows, port


def test_a_secret_in_a_text_blob_json_or_number_column_is_found(tmp_path: Path) -> None:
    db = tmp_path / "gateway.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE a (id INTEGER PRIMARY KEY, note TEXT, raw BLOB, tel INTEGER)")
        conn.execute("CREATE TABLE b (data JSON)")
        conn.execute("INSERT INTO a VALUES (1, ?, NULL, NULL)", (MASKED_ID,))
        conn.execute("INSERT INTO a VALUES (2, NULL, ?, ?)", (b"<x>" + ID.encode(), int(PHONE)))
        conn.execute("INSERT INTO b VALUES (?)", ('{"buyer": {"id": "110101199003070011"}}',))
    conn.close()
    rows = database_bytes(f"sqlite:///{db}")
    assert sorted(find_leaks({*SECRETS, "110101199003070011"}, {"db": rows})) == [
        ("db", "110101199003070011"),
        ("db", ID),
        ("db", PHONE),
    ]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = start_world(tmp_path_factory.mktemp("leak-port"))
    yield w
    w.stop()


def test_what_the_port_was_sent_is_served_and_scanned(world: World) -> None:
    number = f"LN{uuid.uuid4().hex[:12].upper()}"
    doc = manifest([number])
    doc.set("note", f"buyer {PHONE}")  # a leak the port must never be sent
    signed = sign(doc, world.gateway_key)
    resp = world.post("port", signed, "PortManifest", sender=world.settings.gateway_dxp_id)
    assert resp.status_code in (200, 400)  # answered either way; received before any check
    payloads = port_payloads(world.base)
    assert signed in payloads
    assert find_leaks(SECRETS, {"port payloads": payloads}) == [("port payloads", PHONE)]


# ------------------------------------------------------------------ the secrets


def test_the_buyers_of_a_fresh_ceb621_are_read_back_each_its_own() -> None:
    body = fresh_ceb621(3)
    fields = buyer_fields([body])
    ids, phones = fields["buyerIdNumber"], fields["buyerTelephone"]
    assert len(ids) == 3 and len(phones) == 3
    assert buyer_secrets([body]) == ids | phones and len(ids | phones) == 6
    assert all(re.fullmatch(r"\d{17}[\dX]", i) for i in ids)
    assert all(re.fullmatch(r"1[3-9]\d{9}", p) for p in phones)
    assert find_leaks(ids | phones, {"body": body}) == [("body", s) for s in sorted(ids | phones)]


def test_the_buyer_fields_are_found_under_any_namespace_prefix_and_empty_ones_skipped() -> None:
    bodies = [
        b"<a:M xmlns:a='urn:x'><a:buyerIdNumber> 1 </a:buyerIdNumber><!-- c --></a:M>",
        b"<M><H><buyerTelephone>2</buyerTelephone><buyerIdNumber/></H></M>",
    ]
    assert buyer_secrets(bodies) == {"1", "2"}
