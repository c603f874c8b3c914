"""The message corpus: for every type, valid documents pass all three validation layers and
each invalid one is refused with the exact code at the exact path.

Layout: tests/data/messages/<TYPE>/valid*.xml and invalid-*.xml, plus expected.json mapping
each invalid file name to the violations it must produce: [{"path": ..., "code": ...}, ...].
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.services.validate import check_message
from gateway.xml.parsing import DEFAULT_LIMITS

CORPUS = Path(__file__).resolve().parents[1] / "data" / "messages"


def _cases(pattern: str) -> list[Path]:
    return sorted(CORPUS.glob(f"*/{pattern}"))


def _violations(path: Path) -> list[dict[str, str]]:
    checked = check_message(path.read_bytes(), DEFAULT_LIMITS)  # all three layers
    assert checked.spec.type == path.parent.name, f"{path} is detected as {checked.spec.type}"
    return [{"path": v.path, "code": v.code} for v in checked.violations]


@pytest.mark.parametrize("path", _cases("valid*.xml"), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_valid_document_of_every_type_is_accepted(path: Path) -> None:
    assert _violations(path) == []


@pytest.mark.parametrize("path", _cases("invalid-*.xml"), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_an_invalid_document_names_the_exact_code_and_path(path: Path) -> None:
    expected = json.loads((path.parent / "expected.json").read_text())[path.name]
    found = _violations(path)
    assert found, f"{path.name} was accepted"
    for item in expected:
        assert {"path": item["path"], "code": item["code"]} in found, found


def test_every_declared_and_receipt_type_has_a_corpus() -> None:
    from schemas.registry import all_specs

    def invalid_count(t: str) -> int:
        return len(list((CORPUS / t).glob("invalid-*.xml")))

    missing = [
        s.type
        for s in all_specs()
        if not list((CORPUS / s.type).glob("valid*.xml"))
        or (s.kind == "declaration" and invalid_count(s.type) < 3)
    ]
    assert missing == []
