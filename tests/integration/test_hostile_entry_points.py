"""T3 at every XML entry point: each hostile document of the corpus, and the giants built
here, sent to every endpoint that takes XML, directly and inside a DXP envelope.

Each answer must be a problem (never a 5xx) naming a reason code, within 2 s; no request
may read the canary file, open a connection to the canary listener, or echo the canary;
the process may not grow by more than 200 MB over the whole run.
"""

from __future__ import annotations

import time
from typing import Any

import psutil
import pytest
from flask.testing import FlaskClient

from adapters.dxp import Envelope, build_envelope
from gateway.settings import Settings
from tests.unit.test_parsing import CANARY, PARSED, REFUSED, Listener, corpus_bytes

ENTRY_POINTS = (
    "/api/v1/declarations",
    "/api/v1/validate",
    "/api/v1/receipts",
    "/api/v1/port/events",
)
BOUND_SECONDS = 2.0
RSS_GROWTH_MB = 200


def _giants() -> dict[str, bytes]:
    """What the corpus cannot store: documents made large or deep on purpose."""
    head = b'<?xml version="1.0" encoding="UTF-8"?>'
    ceb = b'<ceb:CEB621Message xmlns:ceb="http://www.chinaport.gov.cn/ceb" guid="x" version="1.0">'
    return {
        "depth_10000": head + b"<a>" * 10_000 + b"</a>" * 10_000,
        "text_20mb": head + b"<a>" + b"x" * (20 << 20) + b"</a>",
        "text_under_the_limit": head + ceb + b"x" * ((5 << 20) - 200) + b"</ceb:CEB621Message>",
        "attributes_10000": head
        + b"<a "
        + b" ".join(b'a%d="1"' % i for i in range(10_000))
        + b"/>",
        "elements_100000": head + b"<a>" + b"<b/>" * 100_000 + b"</a>",
        "namespaces_5000": head
        + b"<a "
        + b" ".join(b'xmlns:n%d="u:%d"' % (i, i) for i in range(5_000))
        + b"/>",
        "long_name": head + b"<" + b"a" * 100_000 + b"/>",
        "deep_ceb": head + ceb + b"<ceb:x>" * 200 + b"</ceb:x>" * 200 + b"</ceb:CEB621Message>",
    }


@pytest.fixture
def client(keyed_client: FlaskClient) -> FlaskClient:
    return keyed_client


def _documents(canary_url: str, port: int) -> dict[str, bytes]:
    docs = {n: corpus_bytes(n, canary_url=canary_url, port=port) for n in sorted(REFUSED | PARSED)}
    return docs | _giants()


def _enveloped(settings: Settings, data: bytes) -> bytes:
    """The same bytes as the signed message inside an authority's envelope."""
    return build_envelope(
        Envelope("R-hostile", settings.customs_dxp_id, (settings.demo_org_dxp_id,), "CEB622", data)
    )


def _codes(value: Any) -> list[Any]:
    """Every violation code anywhere in a validation report."""
    if isinstance(value, list):
        return [c for v in value for c in _codes(v)]
    if isinstance(value, dict):
        own = [e.get("code") for e in value.get("errors", []) if isinstance(e, dict)]
        return own + [c for k, v in value.items() if k != "errors" for c in _codes(v)]
    return []


def test_every_hostile_document_at_every_entry_point_is_refused_in_time(
    client: FlaskClient, settings: Settings, tmp_path: Any, proof: Any
):
    canary = tmp_path / "canary.dtd"
    canary.write_bytes(f'<!-- {CANARY} --><!ENTITY leak "{CANARY}">'.encode())
    listener = Listener()
    me = psutil.Process()
    rss0 = me.memory_info().rss
    slow, server_errors, unnamed, echoed = [], [], [], []
    answers = 0
    try:
        docs = _documents(canary.as_uri(), listener.port)
        for name, body in docs.items():
            bodies = [(e, body) for e in ENTRY_POINTS]
            if len(body) < 1 << 20:  # an envelope of a giant is a giant already sent
                wrapped = _enveloped(settings, body)
                bodies += [("/api/v1/receipts", wrapped), ("/api/v1/port/events", wrapped)]
            for endpoint, data in bodies:
                started = time.perf_counter()
                resp = client.post(endpoint, data=data, headers={"Content-Type": "application/xml"})
                took = time.perf_counter() - started
                answers += 1
                where = (name, endpoint, resp.status_code)
                if took > BOUND_SECONDS:
                    slow.append((*where, round(took, 2)))
                if resp.status_code >= 500:
                    server_errors.append(where)
                text = resp.get_data(as_text=True)
                if CANARY in text:
                    echoed.append(where)
                answer = resp.get_json(silent=True) or {}
                codes = [e.get("code") for e in answer.get("errors", [])]
                if resp.status_code == 200 and endpoint == "/api/v1/validate":
                    found = _codes(answer.get("files", []))
                    named = answer.get("valid") is False and found and all(found)
                else:  # a problem: 4xx, problem+json, each violation with its code
                    named = (
                        400 <= resp.status_code < 500
                        and resp.mimetype == "application/problem+json"
                        and codes
                        and all(codes)
                    )
                if not named:
                    unnamed.append((*where, text[:200]))
        connections = listener.received()
    finally:
        listener.close()
    grown_mb = (me.memory_info().rss - rss0) / 2**20
    proof.add(
        "T3",
        {
            "documents": len(docs),
            "entry_points": len(ENTRY_POINTS),
            "requests": answers,
            "server_errors": len(server_errors),
            "slow": len(slow),
            "canary_connections": len(connections),
            "rss_growth_mb": round(grown_mb, 1),
        },
    )
    assert len(docs) >= 40 + 8 and answers >= len(docs) * len(ENTRY_POINTS)
    assert server_errors == []
    assert slow == []
    assert unnamed == []
    assert echoed == []
    assert connections == []
    assert grown_mb <= RSS_GROWTH_MB
