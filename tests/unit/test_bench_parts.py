"""The benchmark's own parts: its documents are what the mix says, its profile reads stages."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import pytest

from bench.documents import Mix, ceb621, schema_invalid
from bench.profile import stage_of
from bench.stack import Stack
from gateway.domain.errors import BusinessRuleViolation, SchemaInvalid
from gateway.services.validate import check_body
from gateway.xml.parsing import ParseLimits


@pytest.mark.parametrize("lines", [1, 10, 50])
def test_a_valid_benchmark_document_passes_every_check(lines: int) -> None:
    check_body(ceb621(lines, random.Random(lines)), "xml", ParseLimits()).raise_if_invalid()


def test_the_invalid_kinds_fail_where_they_should() -> None:
    rng = random.Random(3)
    with pytest.raises(SchemaInvalid):
        check_body(schema_invalid(10, rng), "xml", ParseLimits()).raise_if_invalid()
    with pytest.raises(BusinessRuleViolation):
        check_body(ceb621(10, rng, broken=True), "xml", ParseLimits()).raise_if_invalid()


def test_the_mix_draws_fresh_documents_in_about_the_stated_shares() -> None:
    mix = Mix(seed=5)
    drawn = [mix.draw() for _ in range(2000)]
    kinds = Counter(k for k, _n, _b in drawn)
    assert 0.80 < kinds["valid"] / 2000 < 0.90
    valid = [b for k, _n, b in drawn if k == "valid"]
    assert len(set(valid)) == len(valid)  # new guids and numbers every time


def test_a_profile_sample_goes_to_its_innermost_known_stage() -> None:
    stack = [
        "submit (gateway/api/declarations.py:70)",
        "declare (gateway/services/declare.py:250)",
        "insert_message (gateway/persistence/repository.py:169)",
        "Connection.execute (sqlalchemy/engine/base.py:1450)",
        "_path (<frozen posixpath>:10)",
    ]
    assert stage_of(stack) == "db"
    assert stage_of(stack[:2]) == "app"
    assert stage_of(["ThreadWorker.run (gunicorn/workers/gthread.py:1)"]) == "http"


def test_the_stack_passes_bench_gateway_settings_and_nothing_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """BENCH_GATEWAY_X=v reaches the gateway as GATEWAY_X=v; a GATEWAY_ variable of the
    shell does not (the run must not depend on what the caller happened to export)."""
    monkeypatch.setenv("BENCH_GATEWAY_DELIVERY_BATCH", "100")
    monkeypatch.setenv("GATEWAY_DELIVERY_CONCURRENCY", "1")
    env = Stack(tmp_path).env()
    assert env["GATEWAY_DELIVERY_BATCH"] == "100"
    assert "GATEWAY_DELIVERY_CONCURRENCY" not in env
    assert "BENCH_GATEWAY_DELIVERY_BATCH" in env  # harmless: the gateway reads GATEWAY_ only
    assert env["GATEWAY_DATA_DIR"] == str(tmp_path)
