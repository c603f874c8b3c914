"""A deadlock or lock timeout is answered 503 with Retry-After (nothing was written), any
other database failure stays a 500 problem; neither is an HTML page."""

from __future__ import annotations

import sqlite3

import pytest
from flask import Flask
from sqlalchemy.exc import OperationalError

from gateway.api.problems import init_app


class _PgError(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__("deadlock detected")
        self.sqlstate = sqlstate


def _app(orig: Exception) -> Flask:
    app = Flask(__name__)
    init_app(app)

    @app.post("/x")
    def x() -> str:
        raise OperationalError("UPDATE audit_head ...", {}, orig)

    return app


@pytest.mark.parametrize(
    "orig",
    [sqlite3.OperationalError("database is locked"), _PgError("40P01"), _PgError("55P03")],
    ids=["sqlite-locked", "pg-deadlock", "pg-lock-timeout"],
)
def test_a_busy_database_is_503_with_retry_after(orig: Exception):
    resp = _app(orig).test_client().post("/x")
    assert resp.status_code == 503
    assert resp.headers["Retry-After"] == "1"
    assert resp.mimetype == "application/problem+json"
    assert resp.get_json()["type"].endswith(":database-busy")


def test_another_database_failure_is_a_500_problem():
    resp = _app(sqlite3.OperationalError("no such table: x")).test_client().post("/x")
    assert resp.status_code == 500 and resp.get_json()["type"].endswith(":internal")
