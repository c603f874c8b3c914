"""T5: fuzz every way untrusted bytes enter the gateway (atheris, coverage-guided libFuzzer).

Each target runs in its own process (libFuzzer owns the process it fuzzes), from seeds of
valid documents, and passes when nothing outside the gateway's error tree was raised, no
input took over 2 s and memory stayed under 2 GB. `make test` runs each for a few seconds;
`make prove` for at least 100,000 inputs each (shared/RELIABILITY.md).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("atheris", reason="atheris has no wheel for this Python")

from tests.fuzz.targets import TARGETS

ROOT = Path(__file__).resolve().parents[2]
PROVE = bool(os.environ.get("GATEWAY_PROVE"))
RUNS = 100_000  # inputs per target in `make prove`


def _fuzz(name: str, workdir: Path) -> tuple[int, str, int]:
    seconds = 240 if PROVE else 3
    argv = [sys.executable, "-m", "tests.fuzz", name, str(seconds), str(workdir / "corpus")]
    if PROVE:
        argv.append(f"-runs={RUNS}")
    proc = subprocess.run(
        argv, cwd=ROOT, capture_output=True, text=True, timeout=seconds + 120, check=False
    )
    done = re.search(r"Done (\d+) runs", proc.stderr)
    return proc.returncode, proc.stderr, int(done.group(1)) if done else 0


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_no_input_crashes_hangs_or_exhausts_the_target(name: str, tmp_path: Path, proof: Any):
    code, log, runs = _fuzz(name, tmp_path)
    crashes = sorted(p.name for p in tmp_path.glob("crash-*"))
    proof.add("T5", {"target": name, "runs": runs, "crashes": len(crashes), "exit": code})
    assert code == 0 and not crashes, log[-4000:]
    assert runs > 0, log[-2000:]
    if PROVE:
        assert runs >= RUNS, f"{name}: {runs} inputs"
