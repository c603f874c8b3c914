"""Structured logs: JSON lines with the bound ids, and personal data masked."""

from __future__ import annotations

import io
import json
import logging

import pytest

from gateway.logs import (
    JsonFormatter,
    PersonalDataFilter,
    PlainFormatter,
    bound,
    current_request_id,
    mask_personal,
    valid_request_id,
)


@pytest.fixture
def capture():
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("test"))
    handler.addFilter(PersonalDataFilter())
    logger = logging.getLogger("tests.logs")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_each_line_is_one_json_object_with_the_bound_ids(capture):
    logger, stream = capture
    with bound(request_id="req-1", declaration_id="dcl_1"):
        logger.info("accepted %s", "dcl_1")
    logger.warning("outside")
    first, second = (json.loads(line) for line in stream.getvalue().splitlines())
    assert first["message"] == "accepted dcl_1" and first["level"] == "INFO"
    assert first["request_id"] == "req-1" and first["declaration_id"] == "dcl_1"
    assert first["logger"] == "tests.logs" and first["time"].endswith("Z")
    assert "request_id" not in second and current_request_id() is None


def test_id_card_and_phone_numbers_are_masked_in_messages_and_exceptions(capture):
    logger, stream = capture
    logger.info("buyer %s phone %s", "110105199001010021", "13812345678")
    try:
        raise ValueError("bad id 11010519900101002X")
    except ValueError:
        logger.exception("failed")
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert lines[0]["message"] == "buyer 110105********0021 phone 138****5678"
    assert "19900101" not in lines[1]["exception"] and "110105********002X" in lines[1]["exception"]


@pytest.mark.parametrize(
    "kept",
    [
        "dsp_019dc3a4b5c6123456789012",  # a dispatch id
        "46012026I000000005",  # an invtNo
        "B20261123000000004",  # a preNo
        "20261201123456",  # a timestamp
        "1901101000",  # an HS code
    ],
)
def test_numbers_that_are_not_personal_are_left_alone(kept):
    assert mask_personal(f"see {kept}.") == f"see {kept}."


def test_plain_lines_carry_the_ids_too():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "hello", None, None)
    with bound(request_id="abc"):
        line = PlainFormatter("worker").format(record)
    assert line.endswith("INFO x hello [worker request_id=abc]")


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("0f3a9c2e-1b2d-4e5f-8a9b-0c1d2e3f4a5b", True),
        ("req.1:2_3", True),
        ("", False),
        ("has space", False),
        ("x" * 65, False),
        ("new\nline", False),
        ("trailing\n", False),
        ("-leading-dash", False),
    ],
)
def test_an_incoming_request_id_is_kept_only_when_it_is_sane(value, ok):
    assert (valid_request_id(value) == value) is ok
