"""The personal-data leak scanner (RELIABILITY T9): collect what a stack holds (Redis, the
files of its data dir) and find buyers' ID numbers and phones in it in plaintext.

Shared by the leak test's own small stack (tests/e2e/test_personal_data_leak.py) and the
chaos run (tests/faults/leak.py), whose tens of MB and thousands of buyers need a scan that
does not try every secret at every offset: see ``find_leaks``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import redis
from lxml import etree

ID_NUMBER, PHONE = "buyerIdNumber", "buyerTelephone"
BUYER_FIELDS = (ID_NUMBER, PHONE)


# ------------------------------------------------------------------ collecting


def redis_bytes(url: str) -> bytes:
    """Everything Redis holds: each key's DUMP and its readable value."""
    r = redis.Redis.from_url(url)
    out = bytearray()
    for key in r.scan_iter(count=1000):
        out += key + (r.dump(key) or b"")
        kind = r.type(key)
        if kind == b"string":
            out += r.get(key) or b""
        elif kind == b"hash":
            out += b"".join(k + v for k, v in r.hgetall(key).items())
        elif kind == b"list":
            out += b"".join(r.lrange(key, 0, -1))
        elif kind == b"set":
            out += b"".join(r.smembers(key))
        elif kind == b"zset":
            out += b"".join(r.zrange(key, 0, -1))
        elif kind == b"stream":
            out += json.dumps([str(e) for e in r.xrange(key)]).encode()
    r.close()
    return bytes(out)


def files_bytes(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by path. A file that goes between listing and reading
    (a running stack's temp files) is skipped: it is not there to leak anything."""
    out = {}
    for p in folder.rglob("*"):
        try:
            if p.is_file():
                out[str(p)] = p.read_bytes()
        except FileNotFoundError:
            continue
    return out


# ------------------------------------------------------------------ the secrets


def _parser() -> etree.XMLParser:
    """Our own test bodies, but parsed as safely as anything else (no entities, no network)."""
    return etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=True)


def buyer_fields(bodies: Iterable[bytes]) -> dict[str, set[str]]:
    """{buyerIdNumber: {...}, buyerTelephone: {...}} of CEB621 bodies, by local name so any
    namespace prefix (or none) works; empty values are skipped."""
    found: dict[str, set[str]] = {name: set() for name in BUYER_FIELDS}
    for body in bodies:
        for el in etree.fromstring(body, parser=_parser()).iter():
            if not isinstance(el.tag, str):
                continue  # comments, processing instructions
            name = etree.QName(el).localname
            value = (el.text or "").strip()
            if name in found and value:
                found[name].add(value)
    return found


def buyer_secrets(bodies: Iterable[bytes]) -> set[str]:
    """Every buyer ID number and phone in the bodies: what must never appear in plaintext."""
    return set().union(*buyer_fields(bodies).values())


# ------------------------------------------------------------------ finding them


Trie = dict[int, "Trie"]
END = -1  # a trie key no byte has: a secret ends here


def _trie(words: Iterable[bytes]) -> Trie:
    root: Trie = {}
    for word in words:
        node = root
        for b in word:
            node = node.setdefault(b, {})
        node[END] = {}
    return root


def _pattern(node: Trie) -> bytes:
    """The trie as a regex: each step tests one byte, so a match costs at most one secret's
    length whatever the number of secrets (Python's re does not build a trie of a plain
    alternation: it would try 20,000 branches at every offset)."""
    alts = [
        re.escape(bytes([b])) + _pattern(child) for b, child in sorted(node.items()) if b != END
    ]
    if not alts:
        return b""
    body = alts[0] if len(alts) == 1 else b"(?:" + b"|".join(alts) + b")"
    return b"(?:" + body + b")?" if END in node else body


def _occurrences(rx: re.Pattern[bytes], content: bytes, wanted: set[bytes]) -> set[bytes]:
    """Every secret in ``content``, overlapping ones too: at each start the match is the
    longest secret there, and the shorter ones starting there are its prefixes."""
    found: set[bytes] = set()
    lengths = sorted({len(w) for w in wanted})
    pos = 0
    while (m := rx.search(content, pos)) is not None:
        hit = m.group()
        found.update(hit[:n] for n in lengths if n <= len(hit) and hit[:n] in wanted)
        pos = m.start() + 1
    return found


def find_leaks(secrets: set[str], places: dict[str, bytes]) -> list[tuple[str, str]]:
    """(where, secret) for every secret found in plaintext, at most once per place and
    secret; ASCII case is ignored (a lowercase check digit x is the same ID number).

    One compiled trie regex of all the secrets, searched over each place: about 1 s to
    compile 20,000 secrets and 10-25 ns a byte to search. A masked copy ("110***...")
    does not contain the secret and is not reported."""
    wanted = {s.encode().upper(): s for s in secrets if s}
    if not wanted:
        return []
    keys = set(wanted)
    rx = re.compile(_pattern(_trie(keys)))
    leaks = []
    for where, content in places.items():
        found = _occurrences(rx, content.upper(), keys)
        leaks += [(where, wanted[k]) for k in sorted(found)]
    return leaks


def mask(secret: str) -> str:
    """A secret as a report may show it: first 3 and last 2 characters."""
    if len(secret) <= 5:
        return "*" * len(secret)
    return secret[:3] + "*" * (len(secret) - 5) + secret[-2:]
