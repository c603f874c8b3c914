"""Planned outages: users are told, deliveries to that authority wait without an attempt,
and they go out when the window ends (real Redis, SQLite, a Flask client)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import fields
from datetime import timedelta

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given
from hypothesis import settings as examples
from hypothesis import strategies as st
from sqlalchemy import select

from gateway import create_app
from gateway.cli import cli
from gateway.examples import fresh_ceb621
from gateway.jobs.relay import relay_once
from gateway.persistence import repository as repo
from gateway.persistence import tables as t
from gateway.persistence.database import get_engine
from gateway.provisioning import create_org, ensure_demo_org
from gateway.services.deliver import deliver
from gateway.services.outages import announce, cancel
from gateway.services.runtime import Runtime
from gateway.settings import Settings


@pytest.fixture
def client(settings: Settings) -> Iterator[FlaskClient]:
    key = ensure_demo_org(settings)
    with create_app(settings).test_client() as c:
        c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
        yield c


def submit(client: FlaskClient):  # type: ignore[no-untyped-def]
    resp = client.post(
        "/api/v1/declarations", data=fresh_ceb621(), headers={"Content-Type": "application/xml"}
    )
    assert resp.status_code == 202, resp.json
    return resp


def the_dispatch(settings: Settings) -> dict:  # type: ignore[type-arg]
    with get_engine(settings.db_url).connect() as conn:
        (row,) = conn.execute(select(t.dispatches)).mappings()
        return dict(row)


def due(settings: Settings) -> list[str]:
    """What the relay would (re-)enqueue now."""
    with get_engine(settings.db_url).connect() as conn:
        return repo.due_dispatch_ids(conn, repo.now(), 100)


def events(settings: Settings, kind: str) -> list[dict]:  # type: ignore[type-arg]
    with get_engine(settings.db_url).connect() as conn:
        rows = conn.execute(select(t.events).where(t.events.c.kind == kind)).mappings()
        return [dict(r) for r in rows]


def outage(settings: Settings, seconds: float, starts_in: float = 0.0, authority="customs"):  # type: ignore[no-untyped-def]
    start = repo.now() + timedelta(seconds=starts_in)
    return announce(
        get_engine(settings.db_url),
        authority,
        start,
        start + timedelta(seconds=seconds),
        "system upgrade",
        "test",
    )


def test_a_submission_during_an_outage_is_accepted_told_and_held_without_an_attempt(
    client: FlaskClient, settings: Settings, runtime: Runtime
):
    notice = outage(settings, 1.5)
    resp = submit(client)
    (shown,) = resp.json["notices"]
    assert shown["id"] == notice.id and shown["state"] == "active"
    assert shown["authority"] == "customs" and "system upgrade" in shown["message"]
    assert resp.headers["Warning"].startswith('199 gateway "planned outage of customs from ')

    dispatch = the_dispatch(settings)
    assert deliver(runtime, dispatch["id"]).result == "held"  # the job the API rang
    held = the_dispatch(settings)
    assert held["state"] == "pending" and held["attempts"] == 0
    assert repo.as_utc(held["next_attempt_at"]) == notice.ends_at
    (event,) = events(settings, "outage_hold")
    assert "planned outage until" in event["info"] and event["source"] == "customs"
    assert relay_once(settings) == 0 and due(settings) == []  # nothing is due in the window

    time.sleep(max(0.0, (notice.ends_at - repo.now()).total_seconds()) + 0.05)
    assert due(settings) == [dispatch["id"]]  # the window ended: the queue drains
    assert deliver(runtime, dispatch["id"]).attempt == 1  # the first attempt, after the end
    assert len(events(settings, "outage_hold")) == 1


def test_a_dispatch_already_queued_when_the_outage_starts_is_held_too(
    client: FlaskClient, settings: Settings, runtime: Runtime
):
    submit(client)  # its job waits in Redis
    notice = outage(settings, 3600)
    dispatch = the_dispatch(settings)
    assert deliver(runtime, dispatch["id"]).result == "held"
    assert the_dispatch(settings)["attempts"] == 0
    assert repo.as_utc(the_dispatch(settings)["next_attempt_at"]) == notice.ends_at


def test_the_relay_holds_due_dispatches_once_and_a_cancel_releases_them(
    client: FlaskClient, settings: Settings, runtime: Runtime
):
    submit(client)
    notice = outage(settings, 3600)
    assert relay_once(settings) == 0 and relay_once(settings) == 0
    assert repo.as_utc(the_dispatch(settings)["next_attempt_at"]) == notice.ends_at
    assert len(events(settings, "outage_hold")) == 1
    assert due(settings) == []
    assert cancel(get_engine(settings.db_url), notice.id) == 1
    assert due(settings) == [the_dispatch(settings)["id"]]
    assert client.get("/api/v1/notices").json == {"notices": []}


def test_an_upcoming_outage_is_shown_in_advance_and_deliveries_go_on_until_it_starts(
    client: FlaskClient, settings: Settings, runtime: Runtime
):
    soon = outage(settings, 3600, starts_in=3600)
    outage(settings, 3600, starts_in=3 * 86400)  # beyond the lead time of a submission
    outage(settings, 3600, authority="inspection")  # not where this message goes
    resp = submit(client)
    assert [n["id"] for n in resp.json["notices"]] == [soon.id]
    assert resp.json["notices"][0]["state"] == "upcoming"
    listed = client.get("/api/v1/notices").json["notices"]
    assert [n["authority"] for n in listed] == ["inspection", "customs", "customs"]
    assert deliver(runtime, the_dispatch(settings)["id"]).attempt == 1  # not held yet


def test_notices_need_a_key(settings: Settings):
    resp = create_app(settings).test_client().get("/api/v1/notices")
    assert resp.status_code == 401


def test_the_admin_api_announces_lists_and_cancels(client: FlaskClient, settings: Settings):
    _, admin_key = create_org(settings, "Operator", ["0000000000"], "DXPOPS", role="admin")
    admin = {"Authorization": f"Bearer {admin_key}"}
    window = {"authority": "port", "start": "2031-01-01T00:00Z", "end": "2031-01-01T12:00+08:00"}
    assert client.post("/api/v1/admin/outages", json=window).status_code == 403  # a broker
    made = client.post("/api/v1/admin/outages", json={**window, "note": "维护"}, headers=admin)
    assert made.status_code == 201, made.json
    assert made.json["start"] == "2031-01-01T00:00:00Z"
    assert made.json["end"] == "2031-01-01T04:00:00Z"  # +08:00 read as UTC
    for bad, says in (
        ({**window, "end": "2030-12-31T00:00Z"}, "must end after"),
        ({**window, "start": "tomorrow"}, "not an ISO 8601"),
        ({**window, "start": "2031-01-01T00:00"}, "time zone"),
        ({**window, "authority": "bank"}, "authority must be"),
        ([1, 2], "Send JSON"),
    ):
        resp = client.post("/api/v1/admin/outages", json=bad, headers=admin)
        assert resp.status_code == 400 and says in resp.json["detail"], resp.json
    listed = client.get("/api/v1/admin/outages", headers=admin).json["outages"]
    assert [n["id"] for n in listed] == [made.json["id"]]
    gone = client.delete(f"/api/v1/admin/outages/{made.json['id']}", headers=admin)
    assert gone.status_code == 200 and gone.json["cancelled"] is True
    again = client.delete(f"/api/v1/admin/outages/{made.json['id']}", headers=admin)
    assert again.status_code == 404
    assert client.get("/api/v1/admin/outages", headers=admin).json["outages"][0]["state"] == (
        "cancelled"
    )


def test_the_cli_announces_lists_and_cancels(settings: Settings, monkeypatch):
    for f in fields(Settings):
        monkeypatch.setenv(f"GATEWAY_{f.name.upper()}", str(getattr(settings, f.name)))
    runner = CliRunner()
    made = runner.invoke(
        cli,
        [
            "outage",
            "announce",
            "--authority",
            "customs",
            "--start",
            "now",
            "--end",
            "+2h",
            "--note",
            "yearly maintenance",
            "--json",
        ],
    )
    assert made.exit_code == 0, made.output
    notice_id = made.output.strip().splitlines()[-1].split('"id": "')[1].split('"')[0]
    listed = runner.invoke(cli, ["outage", "list"])
    assert notice_id in listed.output and "active" in listed.output
    assert "yearly maintenance" in listed.output
    bad = runner.invoke(
        cli, ["outage", "announce", "--authority", "customs", "--start", "soon", "--end", "+1h"]
    )
    assert bad.exit_code != 0 and "not an ISO 8601" in bad.output
    cancelled = runner.invoke(cli, ["outage", "cancel", notice_id])
    assert cancelled.exit_code == 0 and "cancelled" in cancelled.output
    assert notice_id not in runner.invoke(cli, ["outage", "list"]).output
    assert "cancelled" in runner.invoke(cli, ["outage", "list", "--all"]).output
    assert runner.invoke(cli, ["outage", "cancel", notice_id]).exit_code != 0


def test_the_migrations_make_exactly_the_tables_and_go_down_and_up_again(settings: Settings):
    from alembic import command

    from gateway.persistence.migrate import alembic_config

    engine = get_engine(settings.db_url)
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), t.metadata) == []
    command.downgrade(alembic_config(settings.db_url), "0005")
    command.upgrade(alembic_config(settings.db_url), "head")
    with engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), t.metadata) == []


JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=8,
)
TIMES = st.sampled_from(
    ["2031-01-01T00:00Z", "0001-01-01T00:00+01:00", "9999-12-31T23:59-01:00", "2031-13-01T00:00Z"]
)


@pytest.fixture
def admin(settings: Settings) -> dict[str, str]:
    _, key = create_org(settings, "Operator", ["0000000000"], "DXPOPS", role="admin")
    return {"Authorization": f"Bearer {key}"}


@examples(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    body=st.fixed_dictionaries(
        {},
        optional={
            "authority": st.sampled_from(["customs", "port", ""]) | JSONISH,
            "start": TIMES | JSONISH,
            "end": TIMES | JSONISH,
            "note": st.text(max_size=600) | JSONISH,
        },
    )
    | JSONISH
)
def test_no_outage_body_gives_a_5xx(client: FlaskClient, admin: dict[str, str], body):
    resp = client.post("/api/v1/admin/outages", json=body, headers=admin)
    assert resp.status_code in (201, 400), resp.json
