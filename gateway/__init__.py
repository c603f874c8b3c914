"""The single-window clearance gateway: ``create_app`` wires the Flask app, nothing more."""

from __future__ import annotations

from typing import Any

from flask import Flask

from gateway.settings import Settings, load_settings


def create_app(
    settings: Settings | None = None, test_config: dict[str, Any] | None = None
) -> Flask:
    """Build the WSGI app; the runtime (keys, engine, clients) loads on first use."""
    from gateway.api import declarations, health, openapi, problems, receipts, validate
    from gateway.bootstrap import redis_connection, runtime
    from gateway.log_redaction import install_log_redaction
    from schemas.registry import preload_schemas

    settings = settings or load_settings()
    from gateway.api import instrument, metrics, notices  # operating it: ids, metrics, outages

    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.config["GATEWAY_SETTINGS"] = settings
    app.json.sort_keys = False  # type: ignore[attr-defined]
    if test_config:
        app.config.update(test_config)
    preload_schemas()  # compiled before any thread serves (libxml2 compiles one at a time)
    app.extensions["gateway.runtime"] = lambda: runtime(settings)
    app.extensions["gateway.redis"] = lambda: redis_connection(settings)
    instrument.init_app(app, settings.log_requests)  # request id, metrics: first in line
    problems.init_app(app)
    install_log_redaction()  # personal data never reaches a log line
    for module in (declarations, receipts, validate, health, openapi):
        app.register_blueprint(module.bp)
    app.register_blueprint(receipts.port_bp)
    app.register_blueprint(declarations.summaries)
    from gateway.api import webhooks

    app.register_blueprint(webhooks.bp)
    app.register_blueprint(webhooks.events_bp)
    app.register_blueprint(metrics.bp)
    app.register_blueprint(notices.bp)
    from gateway import web
    from gateway.api import trace

    app.register_blueprint(trace.bp)
    web.init_app(app, settings)
    from gateway.api import batches

    app.register_blueprint(batches.bp)
    from gateway.api import ratelimit

    ratelimit.init_app(app, settings)  # after the blueprints: it limits some by name
    from gateway.api import mtls

    mtls.init_app(app, settings)  # after the limiter: a refused caller is still counted
    return app
