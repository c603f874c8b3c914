"""The served OpenAPI document, attacked by schemathesis: for every operation, generated and
negative requests (as a caller with a key, and without one) never get a 5xx, and every
answer matches what the document promises (status codes, content types, problem bodies)."""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from flask import Flask
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from gateway import create_app
from gateway.provisioning import ensure_demo_org
from gateway.settings import Settings

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture
def api_app(settings: Settings) -> Flask:
    return create_app(settings)


@pytest.fixture
def api_key(settings: Settings) -> str:
    return ensure_demo_org(settings)


@pytest.fixture
def api_schema(api_app: Flask) -> Any:
    return schemathesis.openapi.from_wsgi("/api/v1/openapi.json", api_app)


# A valid CEB message (XSD, signatures, business rules) cannot be described in JSON Schema,
# so a "schema-valid" generated body is not a valid declaration: it is rightly refused.
UNDESCRIBABLE = [checks.positive_data_acceptance]
# A readiness probe answers 503 by design when a dependency is down (here: no authorities).
PROBES = {"/readyz"}


def _attack(operation: Any, headers: dict[str, str]) -> int:
    """Run generated cases against one operation; returns how many were sent."""
    sent = []

    @given(case=operation.as_strategy())
    @settings(
        max_examples=25,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def attack(case: Any) -> None:
        excluded = UNDESCRIBABLE + ([checks.not_a_server_error] if case.path in PROBES else [])
        case.call_and_validate(headers=headers, excluded_checks=excluded)
        sent.append(1)

    attack()
    return len(sent)


def test_no_operation_answers_5xx_or_off_contract(api_schema: Any, api_key: str) -> None:
    failures: list[str] = []
    operations = cases = 0
    callers = {"with a key": {"Authorization": f"Bearer {api_key}"}, "without a key": {}}
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for who, headers in callers.items():
            try:
                cases += _attack(operation, headers)
            except (Exception, BaseExceptionGroup) as exc:  # every finding counts
                failures.append(f"{operation.method.upper()} {operation.path} {who}: {exc}")
    assert operations >= 10 and cases >= 5 * operations
    assert not failures, "\n\n".join(failures)
