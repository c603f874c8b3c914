"""The message corpus: for every type, valid documents pass and each invalid one is refused
with the exact code at the exact path.

Layout: tests/data/messages/<TYPE>/valid*.xml and invalid-*.xml, plus expected.json mapping
each invalid file name to the violations it must produce: [{"path": ..., "code": ...}, ...].
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from gateway.xml.parsing import parse_xml
from gateway.xml.validation import detect, schema_violations

CORPUS = Path(__file__).resolve().parents[1] / "data" / "messages"


def _cases(pattern: str) -> list[Path]:
    return sorted(CORPUS.glob(f"*/{pattern}"))


def _violations(path: Path) -> list[dict[str, str]]:
    root = parse_xml(path.read_bytes())
    spec = detect(root)
    assert spec.type == path.parent.name, f"{path} is detected as {spec.type}"
    return [{"path": v.path, "code": v.code} for v in schema_violations(root, spec)]


@pytest.mark.parametrize("path", _cases("valid*.xml"), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_a_valid_document_of_every_type_is_accepted(path: Path) -> None:
    assert _violations(path) == []


@pytest.mark.parametrize("path", _cases("invalid-*.xml"),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_an_invalid_document_names_the_exact_code_and_path(path: Path) -> None:
    expected = json.loads((path.parent / "expected.json").read_text())[path.name]
    found = _violations(path)
    assert found, f"{path.name} was accepted"
    for item in expected:
        assert {"path": item["path"], "code": item["code"]} in found, found


def test_every_declared_and_receipt_type_has_a_corpus() -> None:
    from schemas.registry import all_specs

    missing = [s.type for s in all_specs()
               if not list((CORPUS / s.type).glob("valid*.xml"))
               or (s.kind == "declaration" and len(list((CORPUS / s.type).glob("invalid-*.xml"))) < 3)]
    assert missing == []
