"""The sandbox authorities' HTTP server: gunicorn, one process, threads, kept-alive
connections.

Werkzeug's development server, which served the sandbox before, closes every connection
after one answer and starts a thread per connection: each delivery and each receipt push
paid a TCP handshake and a thread start on both sides. Real authorities keep connections
alive, as the gateway's own gunicorn does. One worker process only: the authorities' records
(registry, outboxes, scheduler) live in its memory. Many threads: an injected timeout holds
its thread for as long as it sleeps, and the others must go on answering.
"""

from __future__ import annotations

from typing import Any

from gunicorn.app.base import BaseApplication

from gateway.settings import Settings

THREADS = 32
KEEPALIVE = 30  # seconds an idle connection is kept (the gateway's pool reuses it)


class SandboxServer(BaseApplication):
    """gunicorn running ``sandbox.app.create_app(settings)`` in its one worker (built there,
    after the fork, so the outbox threads run in the process that serves)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        super().__init__()

    def load_config(self) -> None:
        options: dict[str, Any] = {
            "bind": f"127.0.0.1:{self.settings.sandbox_port}",
            "workers": 1,
            "worker_class": "gthread",
            "threads": THREADS,
            "keepalive": KEEPALIVE,
            "graceful_timeout": 5,
            "loglevel": "warning",
            "accesslog": None,
            "proc_name": "gateway-sandbox",
        }
        for key, value in options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from sandbox.app import create_app

        return create_app(self.settings)


def serve(settings: Settings) -> None:
    """Serve until SIGTERM or SIGINT (gunicorn's own handling: the worker finishes what it
    answers, up to the graceful timeout)."""
    SandboxServer(settings).run()
