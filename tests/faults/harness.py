"""Real processes for the fault suite, each one restartable on its own.

The product runs as `python -m gateway run` (the launcher: gunicorn gateway, relay, N rq
workers). Unlike tests/e2e/stack.py, Redis and the sandbox authorities run *outside* the
launcher, started here, so that:

* Redis can be killed and restarted (optionally after FLUSHALL) without the launcher, which
  treats a dead child as fatal, taking the gateway down (it reuses a running Redis);
* the gateway can be stopped and started again mid-batch on the same ports, database and
  Redis while the sandbox, whose records are in memory, keeps counting.

The launcher still starts its own (idle) sandbox on another port; the gateway is pointed at
ours with GATEWAY_{CUSTOMS,INSPECTION,PORT}_URL, through a fault-injecting TCP relay run by
the test process (tcp_relay.py), so the link from the workers to the authorities can be cut
(a blackhole) while the sandbox itself stays up.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psutil
import redis

from gateway.launcher import redis_command
from tests.e2e.stack import PROJECT_ROOT, free_port
from tests.faults.tcp_relay import TcpRelay

FINAL = {"closed", "rejected", "cancelled", "held"}


def _kill_group(proc: subprocess.Popen[bytes], sig: int = signal.SIGTERM, wait: float = 20) -> None:
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(wait)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def _wait(check: Callable[[], bool], what: str, timeout: float, log: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if check():
                return
        except (httpx.HTTPError, redis.RedisError, OSError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not come up within {timeout:.0f} s:\n{log()[-5000:]}")


@dataclass
class FaultStack:
    """Redis, the sandbox and the gateway launcher, on fixed loopback ports."""

    data_dir: Path
    database_url: str = ""  # empty: the gateway's SQLite in data_dir
    workers: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)
    api_key: str = field(default_factory=lambda: "swg_test_" + os.urandom(8).hex())
    port: int = field(default_factory=free_port)
    sandbox_port: int = field(default_factory=free_port)
    idle_sandbox_port: int = field(default_factory=free_port)
    redis_port: int = field(default_factory=free_port)
    redis_proc: subprocess.Popen[bytes] | None = None
    sandbox_proc: subprocess.Popen[bytes] | None = None
    gateway_proc: subprocess.Popen[bytes] | None = None
    gateway_starts: int = 0
    expected_exit: bool = False  # set when a test kills something the launcher dies of
    relay: TcpRelay | None = None  # workers -> relay -> sandbox (started with the stack)

    # ------------------------------------------------------------------ configuration

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def sandbox(self) -> str:
        return f"http://127.0.0.1:{self.sandbox_port}"

    @property
    def redis_url(self) -> str:
        return f"redis://127.0.0.1:{self.redis_port}/0"

    def env(self, **more: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
        env.update(
            {
                "GATEWAY_DATA_DIR": str(self.data_dir),
                "GATEWAY_PORT": str(self.port),
                "GATEWAY_REDIS_URL": self.redis_url,
                "GATEWAY_DEMO_API_KEY": self.api_key,
                "GATEWAY_WORKERS": str(self.workers),
                "GATEWAY_SANDBOX_DELAYS": "0.05,0.05,0.05",
                "GATEWAY_SANDBOX_INSPECTION_RATES": "AEO=0,general=0,untrusted=0",
                "GATEWAY_SANDBOX_CIQ_RATE": "0",
                "GATEWAY_SANDBOX_HOLD_RATE": "0",
                "GATEWAY_SANDBOX_INSPECTION_DELAYS": "0.05,0.05",
                "GATEWAY_SANDBOX_ARRIVAL_DELAY": "0.05",
                "GATEWAY_SANDBOX_GATE_OUT_DELAY": "0.05",
                "GATEWAY_SANDBOX_MATCH_MODE": "off",
                "GATEWAY_RETRY_BASE_SECONDS": "0.2",
                "GATEWAY_RETRY_MAX_SECONDS": "2",
                "GATEWAY_LEASE_SECONDS": "3",
                "GATEWAY_RELAY_INTERVAL": "0.1",
                "GATEWAY_POLL_INTERVAL": "1",
                "GATEWAY_BREAKER_RESET_SECONDS": "1",
                "GATEWAY_HTTP_READ_TIMEOUT": "2",
                "GATEWAY_HTTP_CONNECT_TIMEOUT": "1",
                # The example documents share one buyer: lift the annual quota, which is
                # not what these tests are about.
                "GATEWAY_ANNUAL_QUOTA": "1000000000",
                "PYTHONUNBUFFERED": "1",
            }
        )
        if self.database_url:
            env["GATEWAY_DATABASE_URL"] = self.database_url
        env.update(self.extra_env)
        env.update(more)
        return env

    def _popen(
        self, argv: list[str], env: dict[str, str], log_name: str
    ) -> subprocess.Popen[bytes]:
        with (self.data_dir / log_name).open("ab") as log:
            return subprocess.Popen(
                argv,
                cwd=PROJECT_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log(self, name: str = "gateway.log") -> str:
        path = self.data_dir / name
        return path.read_text(errors="replace") if path.exists() else ""

    # ------------------------------------------------------------------ lifecycle

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        # The sandbox needs its keys before it starts: provision them as `make run` would.
        from gateway.provisioning import ensure_keys
        from gateway.settings import load_settings

        ensure_keys(load_settings(self.env()))
        self.relay = TcpRelay(("127.0.0.1", self.sandbox_port)).start()
        self.start_redis()
        self.start_sandbox()
        self.start_gateway()

    def stop(self) -> None:
        for proc in (self.gateway_proc, self.sandbox_proc, self.redis_proc):
            if proc is not None:
                _kill_group(proc)
        if self.relay is not None:
            self.relay.stop()

    def start_redis(self) -> None:
        data = self.data_dir / "redis-own"
        data.mkdir(parents=True, exist_ok=True)
        self.redis_proc = self._popen(
            redis_command(self.redis_port, data),
            os.environ.copy(),
            "redis.log",
        )
        _wait(
            lambda: bool(redis.Redis.from_url(self.redis_url, socket_timeout=1).ping()),
            "redis",
            20,
            lambda: self.log("redis.log"),
        )

    def restart_redis(self, *, flush: bool = False, down_seconds: float = 1.0) -> None:
        """SIGKILL Redis (after FLUSHALL when ``flush``) and start it again on the same port."""
        assert self.redis_proc is not None
        if flush:
            r = redis.Redis.from_url(self.redis_url, socket_timeout=2)
            r.flushall()
            r.close()
        _kill_group(self.redis_proc, signal.SIGKILL)
        time.sleep(down_seconds)
        self.start_redis()

    def start_sandbox(self) -> None:
        env = self.env(GATEWAY_SANDBOX_PORT=str(self.sandbox_port), GATEWAY_HTTP_READ_TIMEOUT="5")
        self.sandbox_proc = self._popen(
            [sys.executable, "-m", "gateway", "sandbox"], env, "sandbox.log"
        )
        _wait(
            lambda: httpx.get(self.sandbox + "/healthz", timeout=1).status_code == 200,
            "sandbox",
            30,
            lambda: self.log("sandbox.log"),
        )

    def start_gateway(self) -> None:
        authorities = self.relay.url if self.relay is not None else self.sandbox
        env = self.env(
            GATEWAY_SANDBOX_PORT=str(self.idle_sandbox_port),
            GATEWAY_CUSTOMS_URL=f"{authorities}/customs/dxp",
            GATEWAY_INSPECTION_URL=f"{authorities}/inspection/dxp",
            GATEWAY_PORT_URL=f"{authorities}/port/dxp",
        )
        marker = self.log().count("stop: Ctrl-C")
        self.gateway_proc = self._popen(
            [sys.executable, "-m", "gateway", "run"], env, "gateway.log"
        )
        self.gateway_starts += 1
        self.expected_exit = False
        proc = self.gateway_proc

        def up() -> bool:
            if proc.poll() is not None:
                raise RuntimeError(f"gateway exited ({proc.returncode}):\n{self.log()[-5000:]}")
            return (
                self.log().count("stop: Ctrl-C") > marker
                and httpx.get(self.base + "/healthz", timeout=1).status_code == 200
            )

        _wait(up, "gateway", 90, self.log)

    def stop_gateway(self) -> int | None:
        """SIGTERM the launcher's process group (as Stack.stop() does) and wait."""
        assert self.gateway_proc is not None
        self.expected_exit = True
        _kill_group(self.gateway_proc)
        return self.gateway_proc.returncode

    def restart_gateway(self) -> None:
        self.stop_gateway()
        self.start_gateway()

    def gateway_alive(self) -> bool:
        return self.gateway_proc is not None and self.gateway_proc.poll() is None

    # ------------------------------------------------------------------ processes

    def launcher(self) -> psutil.Process:
        assert self.gateway_proc is not None
        return psutil.Process(self.gateway_proc.pid)

    def workers_procs(self) -> list[psutil.Process]:
        """The launcher's delivery workers (`python -m gateway worker --slot N`: rq worker
        parents; the batch workers take no part in delivering)."""
        out = []
        try:
            for child in self.launcher().children():
                try:
                    cmd = child.cmdline()
                except psutil.Error:
                    continue
                if "gateway" in cmd and "worker" in cmd and "--slot" in cmd:
                    out.append(child)
        except psutil.Error:
            pass
        return out

    def work_horses(self) -> list[psutil.Process]:
        """Forked work horses: children of the worker parents (each runs one job)."""
        out = []
        for w in self.workers_procs():
            try:
                out += [c for c in w.children() if c.is_running()]
            except psutil.Error:
                continue
        return out

    def kill_work_horse(self, timeout: float = 10.0) -> int | None:
        """SIGKILL a work horse as soon as one is busy; its pid, or None if none was seen."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for horse in self.work_horses():
                try:
                    horse.send_signal(signal.SIGKILL)
                    return horse.pid
                except psutil.Error:
                    continue
            time.sleep(0.005)
        return None

    def kill_worker_parent(self) -> int | None:
        """SIGKILL one rq worker parent (and its horse, as a crash would leave it)."""
        for w in self.workers_procs():
            try:
                horses = w.children()
                w.send_signal(signal.SIGKILL)
                for h in horses:
                    with contextlib.suppress(psutil.Error):
                        h.send_signal(signal.SIGKILL)
                return w.pid
            except psutil.Error:
                continue
        return None
