"""The proof matrix's bookkeeping: every row's tests exist, outcomes are counted per row,
and the README table says what the report shows (a failed row is shown failed)."""

from __future__ import annotations

import json
from pathlib import Path

from tests.proof import END, MATRIX, ROOT, START, Proof, rewrite_readme, row_of, table


def test_every_row_names_test_files_that_exist():
    for row in MATRIX:
        assert row.files and all((ROOT / f).is_file() for f in row.files), row
    assert [row.id for row in MATRIX] == [f"T{n}" for n in range(1, 11)]


def test_outcomes_and_figures_make_the_verdicts_and_the_table(tmp_path: Path):
    proof = Proof()
    assert row_of("tests/faults/test_chaos.py").id == "T1"  # type: ignore[union-attr]
    proof.outcome("T1", "tests/faults/test_chaos.py::a", "passed", 60.0)
    proof.add("T1", {"backend": "SQLite", "declarations": 1000, "faults": 12, "lost": 0,
                     "unexpected": 0, "second_releases": 0, "server_errors": 0,
                     "drain_seconds": 40.4})  # fmt: skip
    proof.outcome("T5", "tests/fuzz/test_fuzz.py::json", "passed", 3.0)
    proof.add("T5", {"target": "json", "runs": 123456, "crashes": 0, "exit": 0})
    proof.outcome("T4", "tests/unit/test_signing.py::b", "passed", 1.0)
    proof.outcome("T4", "tests/unit/test_signing.py::c", "failed", 1.0)
    report = proof.report()
    verdicts = {rid: row["verdict"] for rid, row in report["rows"].items()}
    assert verdicts["T1"] == "passed" and verdicts["T4"] == "failed"
    assert verdicts["T5"] == "passed" and verdicts["T2"] == "not run"
    assert report["rows"]["T4"]["failed"] == ["tests/unit/test_signing.py::c"]
    text = table(report)
    assert "| T1 |" in text and "1,000 declarations on SQLite" in text and "lost 0" in text
    assert "| T4 | signature wrapping and policy, ours and xmlsec1 | 1 / 2 |" in text
    assert "**failed**" in text and "**not run**" in text
    assert "1 targets, inputs: json 123,456; crashes 0" in text

    path = tmp_path / "report.json"
    proof.write(path)
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{START}\nold table\n{END}\n\nafter\n")
    rewrite_readme(path, readme)
    out = readme.read_text()
    assert "old table" not in out and out.endswith("\n\nafter\n") and "| T10 |" in out
    assert json.loads(path.read_text())["rows"]["T1"]["facts"][0]["declarations"] == 1000
