"""The product under test, started as `make run` starts it, and watched while it runs.

`python -m gateway run` (the launcher: Redis, the sandbox, gunicorn 2 x 4 threads, the relay
and N rq workers) with the embedded defaults, except that the sandbox is in fast mode (no
receipt delays, nothing inspected or held: every valid declaration clears by itself) and,
with ``--postgres``, the database is a throwaway PostgreSQL cluster on loopback.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil

PROJECT_ROOT = Path(__file__).resolve().parents[1]

FAST_SANDBOX = {
    "GATEWAY_SANDBOX_DELAYS": "0,0,0",
    "GATEWAY_SANDBOX_INSPECTION_DELAYS": "0,0",
    "GATEWAY_SANDBOX_ARRIVAL_DELAY": "0",
    "GATEWAY_SANDBOX_GATE_OUT_DELAY": "0",
    "GATEWAY_SANDBOX_INSPECTION_RATES": "AEO=0,general=0,untrusted=0",
    "GATEWAY_SANDBOX_CIQ_RATE": "0",
    "GATEWAY_SANDBOX_HOLD_RATE": "0",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def role_of(proc: psutil.Process) -> str:
    """Which part of the product a process is, from its command line."""
    try:
        cmd = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return "gone"
    if "redis-server" in cmd:
        return "redis"
    if "gateway sandbox" in cmd:
        return "sandbox"
    if "gunicorn" in cmd:
        return "gunicorn"
    if "gateway relay" in cmd:
        return "relay"
    if "gateway worker" in cmd:
        return "worker"
    if "postgres" in cmd:
        return "postgres"
    return "launcher"


GATEWAY_ROLES = ("launcher", "gunicorn", "relay", "worker")


@dataclass
class Stack:
    data_dir: Path
    workers: int = 1
    database_url: str = ""
    worker_class: str = ""  # empty: the embedded default (config/defaults.toml)
    port: int = field(default_factory=free_port)
    sandbox_port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    api_key: str = field(default_factory=lambda: "swg_bench_" + os.urandom(8).hex())
    proc: subprocess.Popen[bytes] | None = None
    rss: list[tuple[float, dict[str, float]]] = field(default_factory=list)
    _stop_sampling: threading.Event = field(default_factory=threading.Event)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'gateway.db'}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update(FAST_SANDBOX)
        env.update(
            GATEWAY_DATA_DIR=str(self.data_dir),
            GATEWAY_PORT=str(self.port),
            GATEWAY_SANDBOX_PORT=str(self.sandbox_port),
            GATEWAY_REDIS_URL=f"redis://127.0.0.1:{self.redis_port}/0",
            GATEWAY_DEMO_API_KEY=self.api_key,
            GATEWAY_WORKERS=str(self.workers),
        )
        if self.database_url:
            env["GATEWAY_DATABASE_URL"] = self.database_url
        if self.worker_class:
            env["GATEWAY_WORKER_CLASS"] = self.worker_class
        # A setting to try without editing the code: BENCH_GATEWAY_X=v runs with GATEWAY_X=v.
        env.update({k[6:]: v for k, v in os.environ.items() if k.startswith("BENCH_GATEWAY_")})
        return env

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "stack.log").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run"],
            cwd=PROJECT_ROOT,
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"gateway exited early:\n{self.log()[-4000:]}")
            if "stop: Ctrl-C" in self.log():
                try:
                    if httpx.get(self.base + "/healthz", timeout=1).status_code == 200:
                        threading.Thread(target=self._sample, daemon=True).start()
                        return
                except httpx.HTTPError:
                    pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"gateway did not come up:\n{self.log()[-4000:]}")

    def log(self) -> str:
        path = self.data_dir / "stack.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def processes(self) -> list[tuple[str, psutil.Process]]:
        """Every live process of the product, with its role."""
        assert self.proc is not None
        try:
            top = psutil.Process(self.proc.pid)
            procs = [top, *top.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []
        return [(role_of(p), p) for p in procs]

    def _sample(self) -> None:
        """RSS by role every half second until stopped (work horses included while alive)."""
        while not self._stop_sampling.is_set():
            by_role: dict[str, float] = {}
            for role, p in self.processes():
                try:
                    by_role[role] = by_role.get(role, 0.0) + p.memory_info().rss / 2**20
                except (psutil.NoSuchProcess, psutil.AccessDenied):
                    continue
            self.rss.append((time.time(), by_role))
            self._stop_sampling.wait(0.5)

    def cpu_times(self) -> dict[str, float]:
        """CPU seconds used so far by role (live processes and their reaped children)."""
        out: dict[str, float] = {}
        for role, p in self.processes():
            try:
                t = p.cpu_times()
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            out[role] = out.get(role, 0.0) + t.user + t.system + t.children_user
            out[role] += t.children_system
        return out

    def stop(self) -> None:
        self._stop_sampling.set()
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
