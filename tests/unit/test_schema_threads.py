"""Schemas compiled from many threads at once (gunicorn's first requests) all compile.

libxml2's schema parser is not thread-safe: in a fresh process, eight threads compiling at
once made every compile of that process fail about one time in five. compile_schema takes
one at a time; each run here is a fresh process, as a new gunicorn worker is."""

from __future__ import annotations

import subprocess
import sys

from tests.proof import ROOT

SCRIPT = """
import threading
from schemas.registry import all_specs, compile_schema
specs, errors, barrier = all_specs(), [], threading.Barrier(8)
def run():
    barrier.wait()
    for spec in specs:
        try:
            compile_schema(spec)
        except Exception as exc:
            errors.append(str(exc))
threads = [threading.Thread(target=run) for _ in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
print(len(errors), errors[:1])
"""


def test_schemas_compile_from_many_threads_at_once_in_fresh_processes():
    for _ in range(8):
        out = subprocess.run(
            [sys.executable, "-c", SCRIPT], cwd=ROOT, capture_output=True, text=True, timeout=60
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout.startswith("0 "), out.stdout
