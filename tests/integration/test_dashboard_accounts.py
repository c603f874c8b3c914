"""The dashboard's sign-in with a password, its API keys page and its batch upload, over the
Flask client on SQLite and a real Redis: who may sign in, which keys a role may grant or
revoke, another organisation's key a 404, every change in the audit trail, and a GBK CSV
with one bad row reported by row, column and reason in English and Chinese."""

from __future__ import annotations

import csv
import io
import re
from typing import Any

import pytest
from click.testing import CliRunner
from flask.testing import FlaskClient

from gateway import create_app
from gateway.cli import cli
from gateway.examples import fresh_ceb621
from gateway.jobs.batch import batch_limits
from gateway.persistence import audit_log
from gateway.persistence.accounts import list_keys
from gateway.persistence.database import get_engine
from gateway.provisioning import create_org, ensure_demo_org
from gateway.services.accounts import create_user, disable_user, issue_key
from gateway.services.batch import process_batch
from gateway.services.runtime import Runtime
from gateway.settings import Settings

PASSWORD = "a long enough secret"


def _token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def _login(browser: FlaskClient, **form: str) -> Any:
    token = _token(browser.get("/dashboard/login").get_data(as_text=True))
    return browser.post("/dashboard/login", data={"csrf_token": token, **form})


def _post(browser: FlaskClient, path: str, **form: Any) -> Any:
    token = _token(browser.get("/dashboard/keys").get_data(as_text=True))
    return browser.post(path, data={"csrf_token": token, **form})


def _audit(settings: Settings, action: str) -> list[Any]:
    with get_engine(settings.db_url).connect() as conn:
        return [s.entry for s in audit_log.iter_entries(conn) if s.entry.action == action]


@pytest.fixture
def app(settings: Settings, org_id: str):
    return create_app(settings)


@pytest.fixture
def engine(settings: Settings):
    return get_engine(settings.db_url)


def _user(engine, org_id: str, username: str, role: str) -> str:
    return create_user(engine, org_id, username, PASSWORD, role)


def _as(app, username: str) -> FlaskClient:
    browser = app.test_client()
    resp = _login(browser, username=username, password=PASSWORD)
    assert resp.status_code == 302 and resp.location.endswith("/dashboard/"), resp.data[:300]
    return browser


def test_a_user_signs_in_with_a_password_as_its_organisation_and_role(app, engine, org_id):
    user_id = _user(engine, org_id, "Li.Wei", "broker")
    browser = app.test_client()
    # Unknown user, wrong password: the same answer, and no session.
    unknown = _login(browser, username="nobody", password=PASSWORD)
    wrong = _login(browser, username="li.wei", password="not the password")
    assert unknown.status_code == wrong.status_code == 401
    message = "Wrong username or password"
    assert message in unknown.get_data(as_text=True) and message in wrong.get_data(as_text=True)
    assert browser.get("/dashboard/").status_code == 302
    # Without the form's token: refused before the password is even looked at.
    assert browser.post("/dashboard/login", data={"username": "li.wei"}).status_code == 400

    resp = _login(browser, username="LI.WEI", password=PASSWORD)
    assert resp.status_code == 302
    cookie = browser.get_cookie("session")
    assert cookie is not None and PASSWORD not in cookie.value
    page = browser.get("/dashboard/").get_data(as_text=True)
    assert "li.wei" in page and "Demo Broker Co." in page and "(broker)" in page

    # Disabling the user ends the open session at once, and it cannot sign in again.
    disable_user(engine, user_id)
    assert browser.get("/dashboard/").status_code == 302
    again = _login(app.test_client(), username="li.wei", password=PASSWORD)
    assert again.status_code == 401 and message in again.get_data(as_text=True)


def test_a_signed_in_user_has_exactly_its_roles_capabilities(app, engine, org_id):
    _user(engine, org_id, "gate", "port")
    browser = _as(app, "gate")
    token = _token(browser.get("/dashboard/upload").get_data(as_text=True))
    declare = browser.post(
        "/dashboard/upload",
        data={"csrf_token": token, "mode": "declare", "file": (io.BytesIO(b"<x/>"), "a.xml")},
        content_type="multipart/form-data",
    )
    assert declare.status_code == 403 and "may not declare" in declare.get_data(as_text=True)
    batch = browser.post(
        "/dashboard/batches",
        data={"csrf_token": token, "file": (io.BytesIO(b"a,b\n1,2\n"), "a.csv")},
        content_type="multipart/form-data",
    )
    assert batch.status_code == 403
    # The API holds a port key to the same rule: a batch is declarations.
    port_key = issue_key(engine, org_id, "port", "gate").secret
    api = app.test_client().post(
        "/api/v1/declarations/batch",
        data=b"a,b\n1,2\n",
        content_type="text/csv",
        headers={"Authorization": f"Bearer {port_key}"},
    )
    assert api.status_code == 403, api.get_json()


def test_the_keys_page_lists_creates_and_revokes_within_the_roles_limits(
    app, engine, org_id, settings: Settings
):
    key = ensure_demo_org(settings)
    broker_id = _user(engine, org_id, "li.wei", "broker")
    browser = _as(app, "li.wei")
    page = browser.get("/dashboard/keys").get_data(as_text=True)
    demo = list_keys(engine.connect(), org_id)[0]
    assert demo["prefix"] in page and key not in page and "demo" in page.lower()
    assert '<option value="admin"' not in page and '<option value="seller"' in page

    made = _post(browser, "/dashboard/keys", label="erp", role="seller")
    html = made.get_data(as_text=True)
    assert made.status_code == 201
    secret = re.search(r'id="secret">(swg_[^<]+)<', html).group(1)
    assert "shown this once" in html
    bearer = {"Authorization": f"Bearer {secret}"}
    client = app.test_client()
    assert client.get("/api/v1/declarations", headers=bearer).status_code == 200
    # The secret is never shown again.
    assert secret not in browser.get("/dashboard/keys").get_data(as_text=True)
    # A broker may not lift itself: no admin key; a role it may grant only.
    refused = _post(browser, "/dashboard/keys", label="root", role="admin")
    assert refused.status_code == 403 and "may not manage admin keys" in refused.get_data(
        as_text=True
    )
    assert _post(browser, "/dashboard/keys", role="god").status_code == 403
    assert len(list_keys(engine.connect(), org_id)) == 2

    created = _audit(settings, "api_key.created")[-1]
    new_id = created.objects[1]
    assert created.actor.id == org_id and created.actor.key_id == broker_id
    assert created.actor.role == "broker" and created.details == {"role": "seller"}

    # Revoke: POST with the token only; then the key is refused and the trail says who.
    assert browser.post(f"/dashboard/keys/{new_id}/revoke").status_code == 400
    done = _post(browser, f"/dashboard/keys/{new_id}/revoke")
    assert done.status_code == 302 and f"revoked={new_id}" in done.location
    assert client.get("/api/v1/declarations", headers=bearer).status_code == 401
    revoked = _audit(settings, "api_key.revoked")[-1]
    assert revoked.objects == (org_id, new_id) and revoked.actor.key_id == broker_id
    assert _post(browser, f"/dashboard/keys/{new_id}/revoke").status_code == 409
    listed = browser.get("/dashboard/keys").get_data(as_text=True)
    assert f'id="{new_id}" class="revoked"' in listed

    # An admin key of the organisation is beyond a broker: it may not revoke it either.
    admin_key = issue_key(engine, org_id, "admin", "ops")
    assert _post(browser, f"/dashboard/keys/{admin_key.id}/revoke").status_code == 403
    admin_id = _user(engine, org_id, "root", "admin")
    root = _as(app, "root")
    assert '<option value="admin"' in root.get("/dashboard/keys").get_data(as_text=True)
    assert _post(root, "/dashboard/keys", role="broker").status_code == 403  # declares nothing
    assert _post(root, f"/dashboard/keys/{admin_key.id}/revoke").status_code == 302
    assert _audit(settings, "api_key.revoked")[-1].actor.key_id == admin_id


def test_another_organisations_key_is_not_found(app, engine, org_id, settings: Settings):
    other_org, other_key = create_org(settings, "Other Ltd.", ["9999999999"], "DXPOTHER00000001")
    theirs = list_keys(engine.connect(), other_org)[0]
    _user(engine, org_id, "li.wei", "broker")
    browser = _as(app, "li.wei")
    assert theirs["prefix"] not in browser.get("/dashboard/keys").get_data(as_text=True)
    resp = _post(browser, f"/dashboard/keys/{theirs['id']}/revoke")
    assert resp.status_code == 404
    missing = _post(browser, "/dashboard/keys/key_doesnotexist/revoke")
    assert missing.status_code == 404
    assert "visible to you" in resp.get_data(as_text=True)
    client = app.test_client()
    assert (
        client.get(
            "/api/v1/declarations", headers={"Authorization": f"Bearer {other_key}"}
        ).status_code
        == 200
    )


def test_revoking_the_key_the_session_uses_signs_it_out(app, engine, org_id, settings):
    key = ensure_demo_org(settings)
    browser = app.test_client()
    assert _login(browser, api_key=key).status_code == 302
    own = next(k for k in list_keys(engine.connect(), org_id) if k["revoked_at"] is None)
    page = browser.get("/dashboard/keys").get_data(as_text=True)
    assert "this session" in page
    resp = _post(browser, f"/dashboard/keys/{own['id']}/revoke")
    assert resp.status_code == 302 and resp.location.endswith("/dashboard/login")
    assert browser.get("/dashboard/keys").status_code == 302
    entry = _audit(settings, "api_key.revoked")[-1]
    assert entry.actor.key_id == own["id"] and entry.objects == (org_id, own["id"])


def test_the_cli_records_key_and_user_changes_in_the_audit_trail(settings: Settings, org_id):
    env = {"GATEWAY_DATA_DIR": settings.data_dir, "GATEWAY_REDIS_URL": settings.redis_url}

    def run(*args: str, **extra: str) -> str:
        result = CliRunner().invoke(cli, list(args), env={**env, **extra}, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.stdout

    made = run("api-keys", "create", "--org", org_id, "--role", "seller", "--name", "cli")
    key_id = re.search(r'"key_id": "([^"]+)"', made).group(1)
    run("api-keys", "revoke", key_id)
    user = run(
        *("users", "create", "--org", org_id, "--username", "wang", "--role", "seller"),
        *("--password-env", "PW"),
        PW=PASSWORD,
    )
    user_id = re.search(r'"user_id": "([^"]+)"', user).group(1)
    run("users", "disable", user_id)
    for action, obj in (
        ("api_key.created", key_id),
        ("api_key.revoked", key_id),
        ("user.created", user_id),
        ("user.disabled", user_id),
    ):
        entry = _audit(settings, action)[-1]
        assert entry.objects == (org_id, obj) and entry.actor.kind == "operator", action
    assert CliRunner().invoke(cli, ["users", "disable", user_id], env=env).exit_code == 1


def _gbk_csv_with_one_bad_row(client: FlaskClient) -> bytes:
    rows = list(
        csv.reader(io.StringIO(client.get("/api/v1/templates/CEB411.csv").data.decode("utf-8-sig")))
    )
    header, good = rows[0], rows[1]
    second = list(good)
    second[header.index("payTransactionId")] = "PAY-SECOND-ROW-1"
    second[header.index("orderNo")] = good[header.index("orderNo")] + "B"
    second[header.index("currency")] = "XYZ"
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([header, good, second])
    return out.getvalue().encode("gbk")


def test_a_batch_is_uploaded_and_its_page_shows_each_rows_result(
    app, runtime: Runtime, settings: Settings, engine, org_id
):
    _user(engine, org_id, "li.wei", "broker")
    browser = _as(app, "li.wei")
    body = _gbk_csv_with_one_bad_row(browser)
    upload_page = browser.get("/dashboard/upload").get_data(as_text=True)
    assert 'id="batch_file"' in upload_page and "CEB411" in upload_page
    empty = browser.post(
        "/dashboard/batches",
        data={"csrf_token": _token(upload_page)},
        content_type="multipart/form-data",
    )
    assert empty.status_code == 400 and "Choose a file" in empty.get_data(as_text=True)
    junk = browser.post(
        "/dashboard/batches",
        data={"csrf_token": _token(upload_page), "file": (io.BytesIO(b"\x00\x01junk"), "x.csv")},
        content_type="multipart/form-data",
    )
    refused = junk.get_data(as_text=True)
    assert 400 <= junk.status_code < 500 and 'id="batch-problem"' in refused
    assert re.search(r'<span lang="zh">[^<]*[\u4e00-\u9fff]', refused), refused[-1500:]

    resp = browser.post(
        "/dashboard/batches",
        data={"csrf_token": _token(upload_page), "file": (io.BytesIO(body), "付款单.csv")},
        content_type="multipart/form-data",
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)[-1500:]
    path = resp.location
    batch_id = path.rsplit("/", 1)[1]
    waiting = browser.get(path).get_data(as_text=True)
    assert 'hx-trigger="every 1s"' in waiting and "queued" in waiting
    process_batch(runtime, batch_id, batch_limits(settings), settings.lease_seconds)

    page = browser.get(path, headers={"HX-Request": "true"}).get_data(as_text=True)
    assert "<html" not in page and "hx-trigger" not in page  # done: polling stops
    assert 'data-status="done"' in page and "付款单.csv" in page
    good, bad = page.split('id="item-1"')[1].split('id="item-2"')
    assert "accepted" in good and "/dashboard/declarations/dcl_" in good
    assert "rejected" in bad and "<code>currency</code>" in bad
    row = re.search(r"<td>(\d+)</td>\s*<td><code>currency</code>", bad)
    assert row is not None and row.group(1) == "3"  # the spreadsheet's own row number
    assert re.search(r'lang="zh">[^<]*[\u4e00-\u9fff]', bad), bad  # Chinese beside English
    assert re.search(r'lang="en">[^<]*[a-z]', bad)
    full = browser.get(path).get_data(as_text=True)
    assert "Recent batches" in full and full.count(batch_id) >= 2
    only = browser.get(path + "?status=rejected").get_data(as_text=True)
    assert 'id="item-2"' in only and 'id="item-1"' not in only
    listing = browser.get("/dashboard/batches").get_data(as_text=True)
    assert batch_id in listing and "付款单.csv" in listing

    # Another organisation's batch is not found.
    _, other_key = create_org(settings, "Other Ltd.", ["9999999999"], "DXPOTHER00000001")
    stranger = app.test_client()
    assert _login(stranger, api_key=other_key).status_code == 302
    assert stranger.get(path).status_code == 404
    assert batch_id not in stranger.get("/dashboard/batches").get_data(as_text=True)


def test_a_session_sees_what_the_same_principal_sees_over_the_api(
    app, engine, org_id, settings: Settings
):
    key = ensure_demo_org(settings)
    client = app.test_client()
    declared = client.post(
        "/api/v1/declarations",
        data=fresh_ceb621(),
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/xml"},
    )
    assert declared.status_code == 202, declared.get_json()
    did = declared.get_json()["id"]
    operator_org, _ = create_org(settings, "Gateway Ops", [], "DXPOPS0000000001", role="admin")
    _user(engine, operator_org, "ops", "admin")
    _user(engine, operator_org, "clerk", "broker")
    ops, clerk = _as(app, "ops"), _as(app, "clerk")
    # The operator reads every organisation's declarations, as its API key would.
    assert did in ops.get("/dashboard/").get_data(as_text=True)
    assert ops.get(f"/dashboard/declarations/{did}").status_code == 200
    # A broker of the same organisation, with no codes, sees none of them.
    assert did not in clerk.get("/dashboard/").get_data(as_text=True)
    assert clerk.get(f"/dashboard/declarations/{did}").status_code == 404
