"""The floor: what the primitives alone cost on the benchmark's documents, on one core.

Hardened parse (gateway/xml/parsing.py), lxml schema validation (schemas/registry.py, the
compiled schema loaded once), then for a valid document the project's lean signer (C14N,
digest, raw signature; signing/xmldsig.py, key loaded once) and serialisation. Invalid
documents cost what it takes to refuse them: parse and validate. No framework, database or
queue: the gateway's accept rate divided by this is how much of its time is the work itself.
"""

from __future__ import annotations

import random
import tempfile
import time
from pathlib import Path
from typing import Any

from lxml import etree

from bench.documents import Mix, ceb621
from gateway.xml.parsing import parse_xml
from schemas.registry import get_spec, schema_for
from signing.keys import generate_test_identity, load_signing_key
from signing.xmldsig import sign_enveloped

STAGES = ("parse", "validate", "sign", "serialise")


def _one(body: bytes, schema: etree.XMLSchema, key: Any, times: dict[str, float]) -> bool:
    t0 = time.process_time()
    root = parse_xml(body)
    t1 = time.process_time()
    ok = schema.validate(root)
    t2 = time.process_time()
    times["parse"] += t1 - t0
    times["validate"] += t2 - t1
    if not ok:
        return False
    sign_enveloped(root, key)
    t3 = time.process_time()
    etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    t4 = time.process_time()
    times["sign"] += t3 - t2
    times["serialise"] += t4 - t3
    return True


def _key() -> Any:
    with tempfile.TemporaryDirectory() as tmp:
        key, cert = Path(tmp, "k.pem"), Path(tmp, "c.pem")
        generate_test_identity("bench floor", key, cert)
        return load_signing_key(key, cert)


def measure_floor(seconds: float = 6.0, seed: int = 7) -> dict[str, Any]:
    """Per-size cost of a valid document and the mix's rate of valid documents per second."""
    schema = schema_for(get_spec("CEB621"))
    key = _key()
    rng = random.Random(seed)
    per_size: dict[str, Any] = {}
    for lines in (1, 10, 50):
        bodies = [ceb621(lines, rng) for _ in range(50)]
        times = dict.fromkeys(STAGES, 0.0)
        n, deadline = 0, time.process_time() + seconds / 6
        while time.process_time() < deadline:
            _one(bodies[n % len(bodies)], schema, key, times)
            n += 1
        total = sum(times.values())
        per_size[str(lines)] = {
            "bytes": len(bodies[0]),
            "us_per_doc": round(total / n * 1e6, 1),
            "docs_per_s": round(n / total, 1),
            "stage_us": {k: round(v / n * 1e6, 1) for k, v in times.items()},
        }
    # The mix itself: valid documents of every size, and the invalid ones refused on the way.
    mix = Mix(seed=seed)
    drawn = [mix.draw() for _ in range(400)]
    times = dict.fromkeys(STAGES, 0.0)
    valid = n = 0
    deadline = time.process_time() + seconds / 2
    while time.process_time() < deadline:
        kind, _lines, body = drawn[n % len(drawn)]
        signed = _one(body, schema, key, times)
        # A duplicate is refused by the database, not the primitives: count it as work, not
        # as an acceptance.
        valid += int(signed and kind == "valid")
        n += 1
    total = sum(times.values())
    return {
        "floor_rate": round(valid / total, 1),
        "floor_requests_per_s": round(n / total, 1),
        "floor_us_per_request": round(total / n * 1e6, 1),
        "floor_stage_share": {k: round(v / total, 3) for k, v in times.items()},
        "floor_by_size": per_size,
        "floor_note": "CPU time of one process (per second of one core, whatever else the "
        "machine runs), in-process: hardened parse + lxml XSD + lean signer "
        "(C14N, SHA-256 digest, RSA-2048 PKCS#1 v1.5) + serialisation; accepted/s over the "
        "same mix of documents as the HTTP run",
    }
