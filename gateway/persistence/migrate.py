"""Bring a database to the newest schema with Alembic (the only way tables are created)."""

from __future__ import annotations

from alembic import command
from alembic.config import Config

from gateway.settings import PROJECT_ROOT


def alembic_config(db_url: str) -> Config:
    """An Alembic configuration for ``db_url`` that needs no alembic.ini."""
    cfg = Config()
    cfg.set_main_option("script_location", str(PROJECT_ROOT / "migrations"))
    cfg.set_main_option("sqlalchemy.url", db_url.replace("%", "%%"))
    return cfg


def upgrade(db_url: str) -> None:
    """Apply every pending migration to ``db_url``."""
    command.upgrade(alembic_config(db_url), "head")
