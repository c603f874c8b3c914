"""Where the CPU goes: py-spy samples every gateway process, summarised by stage.

py-spy records the launcher and all its children (`--subprocesses`: gunicorn workers, rq
workers and their work horses, the relay, the sandbox) without stopping them
(`--nonblocking`). Each sampled stack is given to the stage of its innermost frame that
belongs to a known part; frames of the standard library (json, re, socket ...) are passed
over so that, e.g., a socket read under redis-py counts as the queue.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

# (stage, path prefixes): a frame's file matches when its path starts with the prefix or
# contains it after a "/" (py-spy prints site-packages relative: "sqlalchemy/engine/...").
# Checked innermost frame first.
STAGES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("parse", ("gateway/xml/parsing.py",)),
    ("validate", ("gateway/xml/validation.py", "schemas/registry.py", "xmlschema/")),
    ("sign", ("signing/", "cryptography/", "signxml/")),
    ("rules", ("gateway/domain/", "gateway/services/tax_quota.py", "gateway/services/prematch")),
    ("db", ("sqlalchemy/", "sqlite3/", "psycopg/", "gateway/persistence/")),
    ("queue", ("rq/", "redis/")),
    ("http", ("gunicorn/", "werkzeug/", "httpx/", "httpcore/", "h11/", "adapters/")),
    ("framework", ("flask/", "click/", "jinja2/", "gateway/api/")),
    ("xml", ("gateway/xml/", "lxml/")),
    ("app", ("gateway/", "sandbox/", "bench/")),
)
# Leaf frames where a thread waits for work (py-spy cannot always tell they are idle).
WAITING = ("EpollSelector.select", "Arbiter.wait_for_signals", "_worker (concurrent/futures")
_PROCESS = re.compile(r'^process (\d+):"(.*)"$')
_FRAME_FILE = re.compile(r"\((.*):\d+\)$|\((.*)\)$")


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return found if Path(found).exists() else None


def record(pid: int, seconds: float, out: Path, rate: int = 50) -> subprocess.Popen[bytes] | None:
    """Start py-spy on ``pid`` and its children for ``seconds``; None if py-spy is missing."""
    exe = py_spy()
    if exe is None:
        return None
    argv = [exe, "record", "--pid", str(pid), "--subprocesses", "--nonblocking", "--rate"]
    argv += [str(rate), "--duration", str(int(seconds)), "--format", "raw", "-o", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _role(cmdline: str) -> str:
    for marker, role in (
        ("gateway sandbox", "sandbox"),
        ("gunicorn", "gunicorn"),
        ("gateway relay", "relay"),
        ("gateway worker", "worker"),
    ):
        if marker in cmdline:
            return role
    return "launcher"


def stage_of(frames: list[str]) -> str:
    """The stage of one stack (frames outermost first, as py-spy writes them)."""
    if frames and frames[-1].startswith(WAITING):
        return "waiting"
    for frame in reversed(frames):
        m = _FRAME_FILE.search(frame)
        path = (m.group(1) or m.group(2)) if m else frame
        for stage, needles in STAGES:
            if any(path.startswith(n) or f"/{n}" in path for n in needles):
                return stage
    return "other"


def summarise(raw: Path) -> dict[str, Any]:
    """Samples by process role and stage, as shares of the gateway's own samples."""
    by_role: Counter[str] = Counter()
    by_stage: dict[str, Counter[str]] = {}
    for line in raw.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = stack.split(";")
        role = "launcher"
        # --subprocesses nests the process frames: launcher;gunicorn master;worker;...
        while frames and (m := _PROCESS.match(frames[0])):
            role = _role(m.group(2))
            frames = frames[1:]
        # Skip thread frames ("thread (0x..): name") that py-spy may add.
        frames = [f for f in frames if not f.startswith("thread (")]
        n = int(count)
        by_role[role] += n
        by_stage.setdefault(role, Counter())[stage_of(frames)] += n
    gateway = Counter[str]()
    for role in ("gunicorn", "worker", "relay", "launcher"):
        gateway.update(by_stage.get(role, Counter()))
    gateway.pop("waiting", None)  # shares of the work done, not of threads waiting for it
    total = sum(gateway.values()) or 1
    return {
        "samples_by_process": dict(by_role),
        "gateway_stage_share": {k: round(v / total, 3) for k, v in gateway.most_common()},
        "stage_share_by_process": {
            role: {k: round(v / (sum(c.values()) or 1), 3) for k, v in c.most_common()}
            for role, c in by_stage.items()
        },
    }
