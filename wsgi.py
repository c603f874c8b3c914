"""WSGI entry point: ``gunicorn wsgi:app`` or ``flask --app wsgi``."""

from gateway import create_app
from gateway.logs import configure_logging
from gateway.settings import load_settings

_settings = load_settings()
configure_logging(_settings.log_format, _settings.log_level, "gateway")
app = create_app(_settings)
