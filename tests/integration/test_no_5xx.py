"""Whatever bytes arrive, every public entry point answers with a problem, never a 5xx."""

from __future__ import annotations

from pathlib import Path

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

CORPUS = sorted((Path(__file__).resolve().parents[1] / "data").glob("**/*.xml"))
ENDPOINTS = ["/api/v1/declarations", "/api/v1/validate", "/api/v1/receipts"]
TYPES = ["application/xml", "application/json", "text/xml", "application/zip", ""]


@pytest.fixture
def client(keyed_client: FlaskClient) -> FlaskClient:
    return keyed_client


def _mutate(body: bytes, data: st.DataObject) -> bytes:
    out = bytearray(body)
    for _ in range(data.draw(st.integers(0, 6))):
        pos = data.draw(st.integers(0, max(0, len(out) - 1)))
        if data.draw(st.booleans()) and out:
            del out[pos : pos + data.draw(st.integers(1, 32))]
        else:
            out[pos:pos] = data.draw(
                st.sampled_from(
                    [
                        b"<",
                        b"&",
                        b"]]>",
                        b"\x00",
                        b"\xff\xfe",
                        b"<!DOCTYPE x>",
                        b"{",
                        b'"',
                        b"PK\x03\x04",
                        b"<ceb:x/>",
                        b"\xe4\xb8",
                    ]
                )
            )
    return bytes(out)


@settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_input_gives_a_5xx(client, data: st.DataObject) -> None:
    source = data.draw(st.sampled_from(CORPUS))
    body = _mutate(source.read_bytes(), data)
    endpoint = data.draw(st.sampled_from(ENDPOINTS))
    content_type = data.draw(st.sampled_from(TYPES))
    resp = client.post(endpoint, data=body, headers={"Content-Type": content_type})
    assert resp.status_code < 500, (endpoint, content_type, resp.get_data()[:500])
    if resp.status_code >= 400:
        assert resp.mimetype == "application/problem+json"
