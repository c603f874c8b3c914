"""Start the whole product as `make run` does (real processes on loopback) for tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Stack:
    """A running gateway + worker + relay + sandbox + Redis, and how to talk to it."""

    base: str
    sandbox: str
    api_key: str
    data_dir: Path
    proc: subprocess.Popen[bytes]
    log_path: Path

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key or self.api_key}"}
        return httpx.Client(base_url=self.base, headers=headers, timeout=10)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        return self.proc.returncode


def start_stack(data_dir: Path, delays: str = "0.05,0.05,0.05", **env_extra: str) -> Stack:
    """Run `python -m gateway run` with fresh ports and data dir; wait for /healthz."""
    port, sandbox_port, redis_port = free_port(), free_port(), free_port()
    api_key = "swg_test_" + os.urandom(8).hex()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update(
        {
            "GATEWAY_DATA_DIR": str(data_dir),
            "GATEWAY_PORT": str(port),
            "GATEWAY_SANDBOX_PORT": str(sandbox_port),
            "GATEWAY_REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
            "GATEWAY_SANDBOX_DELAYS": delays,
            "GATEWAY_DEMO_API_KEY": api_key,
            "GATEWAY_RETRY_BASE_SECONDS": "0.2",
            "GATEWAY_RETRY_MAX_SECONDS": "2",
            # Deterministic authorities: nothing is inspected or held unless a test says so.
            "GATEWAY_SANDBOX_INSPECTION_RATES": "AEO=0,general=0,untrusted=0",
            "GATEWAY_SANDBOX_CIQ_RATE": "0",
            "GATEWAY_SANDBOX_HOLD_RATE": "0",
            "GATEWAY_SANDBOX_INSPECTION_DELAYS": "0.05,0.05",
            "GATEWAY_SANDBOX_ARRIVAL_DELAY": "0.05",
            "GATEWAY_SANDBOX_GATE_OUT_DELAY": "0.05",
            "GATEWAY_SANDBOX_MATCH_TIMEOUT": "3",
            "GATEWAY_POLL_INTERVAL": "0.5",
            "GATEWAY_BREAKER_RESET_SECONDS": "1",
            "GATEWAY_WEBHOOK_RETRY_BASE_SECONDS": "0.2",
            "GATEWAY_WEBHOOK_RETRY_MAX_SECONDS": "1",
            **env_extra,
        }
    )
    data_dir.mkdir(parents=True, exist_ok=True)
    log_path = data_dir / "stack.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "gateway", "run"],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    stack = Stack(
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{sandbox_port}",
        api_key,
        data_dir,
        proc,
        log_path,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"stack exited early ({proc.returncode}):\n{stack.log()}")
        try:
            if (
                httpx.get(stack.base + "/healthz", timeout=1).status_code == 200
                and "stop: Ctrl-C" in stack.log()
            ):
                return stack
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    stack.stop()
    raise RuntimeError(f"stack did not become healthy:\n{stack.log()}")


def wait_for_status(
    client: httpx.Client, declaration_id: str, wanted: set[str], timeout: float = 30.0
) -> dict:  # type: ignore[type-arg]
    """Poll a declaration until its status is one of ``wanted``; return its last JSON."""
    deadline = time.monotonic() + timeout
    body: dict = {}  # type: ignore[type-arg]
    while time.monotonic() < deadline:
        body = client.get(f"/api/v1/declarations/{declaration_id}").json()
        if body.get("status") in wanted:
            return body
        time.sleep(0.1)
    raise AssertionError(f"{declaration_id} never reached {wanted}; last: {body}")


def cli(stack: Stack, *args: str) -> str:
    """Run ``python -m gateway ARGS`` against the stack's data dir (as its operator would)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env["GATEWAY_DATA_DIR"] = str(stack.data_dir)
    done = subprocess.run(
        [sys.executable, "-m", "gateway", *args],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return done.stdout
