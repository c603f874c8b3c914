"""Organisations, API keys and users from the CLI, as an operator uses them; the schema
that stores them is exactly what the migrations create."""

from __future__ import annotations

import json

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from sqlalchemy import delete, func, select

from gateway import create_app
from gateway.cli import cli
from gateway.examples import fresh_ceb621
from gateway.persistence import tables as t
from gateway.persistence.database import get_engine
from gateway.persistence.migrate import alembic_config
from gateway.services.accounts import authenticate_user
from gateway.services.declare import declare
from gateway.services.runtime import Runtime
from gateway.settings import Settings


def _cli(settings: Settings, *args: str, env: dict[str, str] | None = None) -> str:
    env = {
        "GATEWAY_DATA_DIR": settings.data_dir,
        "GATEWAY_REDIS_URL": settings.redis_url,
        **(env or {}),
    }
    result = CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def test_the_tables_are_exactly_what_the_migrations_create(settings: Settings):
    with get_engine(settings.db_url).connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), t.metadata) == []


def test_upgrading_indexes_the_parties_of_existing_declarations(
    settings: Settings, runtime: Runtime, org_id: str
):
    acc = declare(runtime, org_id, fresh_ceb621(2), "application/xml")
    cfg = alembic_config(settings.db_url)
    with runtime.engine.begin() as conn:
        conn.execute(delete(t.declaration_parties))
    runtime.engine.dispose()
    command.downgrade(cfg, "0005")
    command.upgrade(cfg, "head")
    with runtime.engine.connect() as conn:
        rows = conn.execute(
            select(t.declaration_parties.c.declaration_id, func.count()).group_by(
                t.declaration_parties.c.declaration_id
            )
        ).all()
    assert {r[0]: r[1] for r in rows} == {d.id: 3 for d in acc.declarations}
    with runtime.engine.connect() as conn:
        codes = conn.execute(
            select(t.organisation_codes.c.code).where(t.organisation_codes.c.org_id == org_id)
        ).scalars()
        assert sorted(codes) == sorted(settings.demo_codes)


def test_an_operator_creates_lists_and_revokes_keys_and_users(settings: Settings):
    org = json.loads(
        _cli(settings, "create-org", "--name", "Acme", "--codes", "3301960001", "--key-name", "erp")
    )
    made = json.loads(
        _cli(settings, "api-keys", "create", "--org", "Acme", "--role", "seller", "--name", "web")
    )
    assert made["org_id"] == org["org_id"] and made["api_key"].startswith("swg_")
    listing = _cli(settings, "api-keys", "list", "--org", "Acme")
    assert "erp" in listing and "web" in listing and made["key_id"] in listing
    assert made["api_key"] not in listing and org["api_key"] not in listing  # shown once only

    client = create_app(settings).test_client()
    bearer = {"Authorization": f"Bearer {made['api_key']}"}
    assert client.get("/api/v1/declarations", headers=bearer).status_code == 200
    assert (
        "last used 20"
        in _cli(settings, "api-keys", "list", "--org", "Acme")
        .split(made["key_id"])[1]
        .splitlines()[0]
    )
    _cli(settings, "api-keys", "revoke", made["key_id"])
    assert client.get("/api/v1/declarations", headers=bearer).status_code == 401
    assert made["key_id"] not in _cli(settings, "api-keys", "list")
    assert "revoked" in _cli(settings, "api-keys", "list", "--all")

    user = json.loads(
        _cli(
            settings,
            *("users", "create", "--org", "Acme", "--username", "Li.Wei", "--role", "broker"),
            *("--email", "li@acme.cn", "--password-env", "PW"),
            env={"PW": "a long enough secret"},
        )
    )
    engine = get_engine(settings.db_url)
    who = authenticate_user(engine, "li.wei", "a long enough secret")
    assert who is not None and who["org_id"] == org["org_id"] and who["codes"] == ("3301960001",)
    assert authenticate_user(engine, "li.wei", "a wrong secret") is None
    assert authenticate_user(engine, "nobody", "a long enough secret") is None
    with engine.connect() as conn:
        stored = conn.execute(select(t.users.c.password_hash)).scalar_one()
    assert stored.startswith("scrypt$") and "secret" not in stored
    _cli(settings, "users", "disable", user["user_id"])
    assert authenticate_user(engine, "li.wei", "a long enough secret") is None

    orgs = json.loads(_cli(settings, "orgs", "list", "--json"))
    assert {"name": "Acme", "api_keys": 1, "users": 0} in [
        {k: o[k] for k in ("name", "api_keys", "users")} for o in orgs
    ]
    _cli(settings, "orgs", "update", "--org", "Acme", "--codes", "3301960001,3301960002")
    assert json.loads(_cli(settings, "orgs", "list", "--json"))[-1]["codes"] == [
        "3301960001",
        "3301960002",
    ]
    with engine.connect() as conn:  # the rule reads them from here, in the same query
        rows = conn.execute(
            select(t.organisation_codes.c.code).where(
                t.organisation_codes.c.org_id == org["org_id"]
            )
        ).scalars()
        assert sorted(rows) == ["3301960001", "3301960002"]


def test_the_cli_refuses_unknown_organisations_roles_and_short_passwords(settings: Settings):
    env = {"GATEWAY_DATA_DIR": settings.data_dir}
    runner = CliRunner()
    assert (
        runner.invoke(
            cli, ["api-keys", "create", "--org", "Nobody", "--role", "broker"], env=env
        ).exit_code
        == 1
    )
    assert (
        runner.invoke(
            cli, ["api-keys", "create", "--org", "Nobody", "--role", "god"], env=env
        ).exit_code
        == 2
    )
    assert runner.invoke(cli, ["api-keys", "revoke", "key_missing"], env=env).exit_code == 1
    _cli(settings, "create-org", "--name", "Acme", "--codes", "3301960001")
    short = runner.invoke(
        cli,
        [
            "users",
            "create",
            "--org",
            "Acme",
            "--username",
            "x",
            "--role",
            "seller",
            "--password-env",
            "PW",
        ],
        env={**env, "PW": "short"},
    )
    assert short.exit_code == 1 and "at least" in short.output
