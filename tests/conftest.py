"""Shared fixtures: paths to reference data, which tests skip cleanly when it is absent."""

from __future__ import annotations

from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SHARED = PROJECT_ROOT.parent / "shared"


@pytest.fixture
def shared_dir() -> Path:
    """../shared (official schemas and samples); skip when this checkout has none."""
    if not SHARED.is_dir():
        pytest.skip("../shared is not present")
    return SHARED


def _hypothesis_profiles() -> None:
    """CI replays the same examples every run (no flaky red); locally they vary."""
    import os

    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, print_blob=True)
    if os.environ.get("CI"):
        settings.load_profile("ci")


_hypothesis_profiles()


# ------------------------------------------------------------------ the proof matrix

_PROOF = None


def _proof():  # type: ignore[no-untyped-def]
    global _PROOF
    if _PROOF is None:
        from tests.proof import Proof

        _PROOF = Proof()
    return _PROOF


@pytest.fixture(scope="session")
def proof():  # type: ignore[no-untyped-def]
    """The run's proof-matrix record: ``proof.add("T1", figures)`` (tests/proof.py)."""
    return _proof()


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Count each test's outcome in its proof-matrix row (by its file)."""
    from tests.proof import row_of

    row = row_of(report.nodeid.split("::", 1)[0])
    if row is None:
        return
    if report.when == "call" or (report.when == "setup" and report.outcome != "passed"):
        _proof().outcome(row.id, report.nodeid, report.outcome, report.duration)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """With GATEWAY_REPORT=path (make prove sets it), write the reliability report."""
    import os

    target = os.environ.get("GATEWAY_REPORT")
    if target and _PROOF is not None:
        _PROOF.write(Path(target))
