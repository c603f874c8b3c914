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
