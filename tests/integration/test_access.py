"""Object-level access over HTTP: every endpoint tried as the wrong organisation answers as
for a declaration that does not exist (404, same shape), and never with the other tenant's
data; every role is held to its capabilities (403). Real SQLite, real Redis, Flask client."""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient

from gateway import create_app
from gateway.examples import fresh_ceb621
from gateway.persistence.accounts import list_keys
from gateway.persistence.database import get_engine
from gateway.provisioning import create_org, ensure_demo_org, ensure_keys, init_db
from gateway.services.accounts import issue_key, revoke_api_key
from gateway.services.keyring import generate_key
from gateway.settings import Settings, load_settings
from tests.e2e.stack import free_port

CANARY = "CANARY" + uuid.uuid4().hex[:6].upper()
B_CODES = ["3301960001", "3301960002", "3301960003"]  # agent, platform, logistics of tenant B


def inventory_of_b(*, documents: int = 1, cop_no: str = CANARY) -> bytes:
    """A CEB621 declared by tenant B: B's codes throughout, the canary in copNo, orderNo,
    the goods' names and the declarant's name."""
    text = fresh_ceb621(documents).decode()
    for old, new in zip(("1105910159", "1101110325", "1101180326"), B_CODES, strict=True):
        text = text.replace(f">{old}<", f">{new}<")
    text = text.replace("DXPENT0000000001", "DXPENT0000000002")
    text = re.sub(
        r"<ceb:copNo>[^<]*",
        lambda _m: f"<ceb:copNo>{cop_no}{uuid.uuid4().hex[:8].upper()}"[: 11 + 20],
        text,
    )
    text = re.sub(r"<ceb:orderNo>ORD", f"<ceb:orderNo>{CANARY}", text)
    for name in ("婴儿配方奶粉", "示例报关企业"):
        text = text.replace(name, f"{CANARY} {name}")
    return text.encode()


@dataclass
class World:
    client: FlaskClient
    keys: dict[str, str]  # principal name -> API key
    a_id: str  # tenant A's declaration
    b_id: str  # tenant B's declaration (carries the canary)

    def call(self, who: str, method: str, path: str, **kw: Any) -> Any:
        headers = {"Authorization": f"Bearer {self.keys[who]}", **kw.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kw)

    def submit(self, who: str, body: bytes, **kw: Any) -> Any:
        headers = {"Content-Type": "application/xml", **kw.pop("headers", {})}
        return self.call(who, "POST", "/api/v1/declarations", data=body, headers=headers, **kw)


@pytest.fixture(scope="module")
def access_settings(tmp_path_factory: pytest.TempPathFactory, redis_url: str) -> Settings:
    """One provisioned data dir for the whole module: the tenants are set up once."""
    s = load_settings(
        env={},
        inspection_hs_prefixes="",
        port_message_types="",
        data_dir=str(tmp_path_factory.mktemp("access")),
        redis_url=redis_url,
        doorbell_grace=0.0,
        sandbox_port=free_port(),
    )
    ensure_keys(s)
    init_db(s)
    return s


@pytest.fixture(scope="module")
def world(access_settings: Settings) -> World:
    settings = access_settings
    engine = get_engine(settings.db_url)
    keys = {"a": ensure_demo_org(settings)}
    org_b, keys["b"] = create_org(settings, "Other Broker Co.", B_CODES, "DXPENT0000000002")
    generate_key(engine, settings.keys_path, settings.registered_path, org_b)
    # A platform that is a party (ebpCode) to B's declarations, but submitted none of them.
    org_c, keys["c"] = create_org(
        settings, "Platform C", [B_CODES[1]], "DXPENT0000000003", role="seller"
    )
    generate_key(engine, settings.keys_path, settings.registered_path, org_c)
    keys["c2"] = issue_key(engine, "Platform C", "seller", name="to revoke").secret
    create_org(settings, "Port Co.", ["4601"], "DXPPORT000000009", role="port")
    keys["port"] = issue_key(engine, "Port Co.", "port").secret
    keys["authority"] = issue_key(engine, "Port Co.", "authority").secret
    keys["admin"] = issue_key(engine, "Demo Broker Co.", "admin").secret
    client = create_app(settings).test_client()
    w = World(client, keys, "", "")
    a = w.submit("a", fresh_ceb621())
    b = w.submit("b", inventory_of_b(), headers={"Idempotency-Key": "b-key-1"})
    assert a.status_code == 202, a.get_json()
    assert b.status_code == 202, b.get_json()
    w.a_id, w.b_id = a.get_json()["id"], b.get_json()["id"]
    return w


UUID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")


def _new_guids(text: str) -> str:
    return UUID.sub(lambda _m: str(uuid.uuid4()).upper(), text)


def _shape(resp: Any, declaration_id: str) -> tuple[Any, ...]:
    body = resp.get_json()
    detail = body["detail"].replace(declaration_id, "<id>")
    instance = body["instance"].replace(declaration_id, "<id>")
    return resp.status_code, resp.mimetype, body["type"], body["title"], detail, instance


ENDPOINTS = [
    ("GET", "/api/v1/declarations/{id}", {}),
    ("GET", "/api/v1/declarations/{id}/signed", {}),
    ("GET", "/api/v1/declarations/{id}/message", {}),
    ("GET", "/api/v1/declarations/{id}/message", {"headers": {"Accept": "application/json"}}),
    ("POST", "/api/v1/declarations/{id}/cancel", {"json": {"reason": "not mine"}}),
]


@pytest.mark.parametrize(("method", "path", "kw"), ENDPOINTS)
def test_a_foreign_declaration_is_answered_exactly_as_a_missing_one(
    world: World, method: str, path: str, kw: dict[str, Any]
):
    missing = "dcl_" + "0" * 24
    foreign = world.call("a", method, path.format(id=world.b_id), **kw)
    absent = world.call("a", method, path.format(id=missing), **kw)
    assert foreign.status_code == 404
    assert _shape(foreign, world.b_id) == _shape(absent, missing)
    assert CANARY.encode() not in foreign.get_data()
    # ... while its owner gets it (the canary is really there to leak).
    own = world.call("b", method, path.format(id=world.b_id), **kw)
    assert own.status_code in (200, 422), own.get_json()
    if own.status_code == 200:
        assert CANARY.encode() in own.get_data()


def test_the_canary_never_reaches_another_tenant_on_any_endpoint(world: World):
    responses = [world.call("a", m, p.format(id=world.b_id), **kw) for m, p, kw in ENDPOINTS]
    responses += [
        world.call("a", "GET", "/api/v1/declarations"),
        world.call("a", "GET", "/api/v1/declarations?status=accepted&type=CEB621&limit=200"),
        world.call("a", "GET", f"/api/v1/declarations?cursor=dcl_zzz&org_id={world.b_id}"),
        world.call("a", "POST", "/api/v1/summaries", json={"month": "2026-11"}),
        # B's idempotency key from A: keys are per organisation, nothing is replayed.
        world.submit("a", fresh_ceb621(), headers={"Idempotency-Key": "b-key-1"}),
        world.call("port", "GET", "/api/v1/declarations"),
        world.call("authority", "GET", f"/api/v1/declarations/{world.b_id}"),
    ]
    for r in responses:
        assert r.status_code < 500, r.get_data()
        assert CANARY.encode() not in r.get_data(), r.request.path
    listed = [i["id"] for i in world.call("a", "GET", "/api/v1/declarations").get_json()["items"]]
    assert world.a_id in listed and world.b_id not in listed


def test_enumerated_ids_all_look_missing(world: World):
    prefix = world.b_id[:-6]
    shapes = set()
    for n in range(200):
        guess = f"{prefix}{n:06x}" if n else world.b_id
        resp = world.call("a", "GET", f"/api/v1/declarations/{guess}")
        assert resp.status_code == 404
        shapes.add(_shape(resp, guess))
    assert len(shapes) == 1


def test_a_party_named_by_its_code_sees_the_declaration_but_not_others(world: World):
    seen = world.call("c", "GET", f"/api/v1/declarations/{world.b_id}")
    assert seen.status_code == 200 and seen.get_json()["cop_no"].startswith(CANARY)
    # A party that is neither the declarant nor its broker reads the message masked, and not
    # the signed bytes (they carry the buyer's personal data and cannot be masked).
    masked = world.call("c", "GET", f"/api/v1/declarations/{world.b_id}/message")
    assert masked.status_code == 200 and masked.headers["X-Personal-Data"] == "masked"
    assert world.call("c", "GET", f"/api/v1/declarations/{world.b_id}/signed").status_code == 403
    assert world.call("c", "GET", f"/api/v1/declarations/{world.a_id}").status_code == 404
    listed = [i["id"] for i in world.call("c", "GET", "/api/v1/declarations").get_json()["items"]]
    assert world.b_id in listed and world.a_id not in listed


def test_a_message_is_shown_only_to_who_sees_every_document_in_it(world: World):
    # B declares two lists in one message; only the first names platform C.
    text = inventory_of_b(documents=2, cop_no="CANARYTWO").decode()
    second = text.index("<ceb:Inventory>", text.index("</ceb:Inventory>"))
    text = text[:second] + text[second:].replace(f">{B_CODES[1]}<", ">3301969999<")
    resp = world.submit("b", text.encode())
    assert resp.status_code == 202, resp.get_json()
    first, other = (d["id"] for d in resp.get_json()["declarations"])
    assert world.call("c", "GET", f"/api/v1/declarations/{first}").status_code == 200
    assert world.call("c", "GET", f"/api/v1/declarations/{other}").status_code == 404
    for part in ("signed", "message"):
        hidden = world.call("c", "GET", f"/api/v1/declarations/{first}/{part}")
        assert hidden.status_code == 404 and b"3301969999" not in hidden.get_data()
        assert world.call("b", "GET", f"/api/v1/declarations/{first}/{part}").status_code == 200


def test_a_duplicate_from_another_tenant_is_refused_without_naming_its_declaration(world: World):
    text = inventory_of_b().decode()  # the same business key (agentCode + copNo) as B's
    body = re.sub(r"(<ceb:copNo>)[^<]*", rf"\g<1>{CANARY}", text)
    first = world.submit("b", body.encode())
    assert first.status_code == 202
    again = world.submit("a", _new_guids(body).encode())
    problem = again.get_json()
    assert again.status_code == 409, problem
    assert problem["errors"][0]["code"] == "document.duplicate_business_key"
    raw = again.get_data().decode()
    assert first.get_json()["id"] not in raw and first.get_json()["message"]["id"] not in raw
    # The owner is told which declaration it is.
    mine = world.submit("b", _new_guids(body).encode())
    assert mine.status_code == 409, mine.get_json()
    assert first.get_json()["id"] in mine.get_data().decode()


ROLE_DENIED = [
    ("port", "POST", "/api/v1/declarations"),
    ("authority", "POST", "/api/v1/declarations"),
    ("admin", "POST", "/api/v1/declarations"),
    ("port", "POST", "/api/v1/declarations/{id}/cancel"),
    ("authority", "POST", "/api/v1/declarations/{id}/cancel"),
    ("admin", "POST", "/api/v1/declarations/{id}/cancel"),
    ("port", "POST", "/api/v1/summaries"),
    ("authority", "POST", "/api/v1/summaries"),
    ("admin", "POST", "/api/v1/summaries"),
]


@pytest.mark.parametrize(("who", "method", "path"), ROLE_DENIED)
def test_a_role_calling_what_it_may_not_is_refused_403(
    world: World, who: str, method: str, path: str
):
    body = fresh_ceb621() if path.endswith("declarations") else b'{"reason": "x"}'
    resp = world.call(
        who,
        method,
        path.format(id=world.a_id),
        data=body,
        headers={"Content-Type": "application/xml" if path.endswith("s") else "application/json"},
    )
    assert resp.status_code == 403, resp.get_json()
    problem = resp.get_json()
    assert resp.mimetype == "application/problem+json"
    assert problem["type"].endswith("permission-denied") and problem["role"] == who
    assert CANARY.encode() not in resp.get_data()


def test_the_operator_sees_every_tenant_but_declares_nothing(world: World):
    listed = world.call("admin", "GET", "/api/v1/declarations").get_json()["items"]
    assert {world.a_id, world.b_id} <= {i["id"] for i in listed}
    assert world.call("admin", "GET", f"/api/v1/declarations/{world.b_id}").status_code == 200


def _own_json(world: World) -> dict[str, Any]:
    """A's own message as JSON, with new guids and a new copNo: ready to declare again."""
    own = world.call(
        "a",
        "GET",
        f"/api/v1/declarations/{world.a_id}/message",
        headers={"Accept": "application/json"},
    ).get_json()
    return json.loads(  # type: ignore[no-any-return]
        _new_guids(json.dumps(own, ensure_ascii=False)).replace('"COP', f'"C{uuid.uuid4().hex[:2]}')
    )


def test_submitting_cannot_set_the_organisation_or_the_status(world: World):
    # Tenant or status fields beside the message are refused; inside its head they are
    # ignored (not part of the CEB document): never applied either way.
    beside = {**_own_json(world), "org_id": "org_b", "status": "released"}
    resp = world.call("a", "POST", "/api/v1/declarations", json=beside)
    assert resp.status_code == 400, resp.get_json()
    inside = _own_json(world)
    inside["CEB621Message"]["Inventory"][0]["InventoryHead"].update(
        {"org_id": "org_b", "orgId": "org_b", "status": "released"}
    )
    resp = world.call("a", "POST", "/api/v1/declarations", json=inside)
    assert resp.status_code in (202, 422), resp.get_json()
    if resp.status_code == 202:
        assert resp.get_json()["status"] == "accepted"
        assert world.call("b", "GET", resp.headers["Location"]).status_code == 404
        signed = world.call("a", "GET", resp.headers["Location"] + "/signed").get_data()
        assert b"org_b" not in signed and b"released" not in signed
    # In the query string or headers they are ignored: the caller's org, status accepted.
    resp = world.call(
        "a",
        "POST",
        "/api/v1/declarations?org_id=org_b&status=released",
        json=_own_json(world),
        headers={"X-Org-Id": "org_b", "X-Status": "released"},
    )
    assert resp.status_code == 202, resp.get_json()
    assert world.call("a", "GET", resp.headers["Location"]).get_json()["status"] == "accepted"
    assert world.call("b", "GET", resp.headers["Location"]).status_code == 404
    cancel = world.call(
        "a",
        "POST",
        f"/api/v1/declarations/{world.a_id}/cancel",
        json={"reason": "x", "org_id": "org_b", "status": "cancelled"},
    )
    assert cancel.status_code == 422  # not accepted by customs yet; the extra keys change nothing
    assert world.call("a", "GET", f"/api/v1/declarations/{world.a_id}").get_json()["status"] == (
        "accepted"
    )


def test_a_revoked_key_is_refused_at_once(world: World, access_settings: Settings):
    assert world.call("c2", "GET", "/api/v1/declarations").status_code == 200
    engine = get_engine(access_settings.db_url)
    with engine.connect() as conn:
        key_id = next(k["id"] for k in list_keys(conn) if k["prefix"] == world.keys["c2"][:8])
    revoke_api_key(engine, key_id)
    resp = world.call("c2", "GET", "/api/v1/declarations")
    assert resp.status_code == 401 and resp.mimetype == "application/problem+json"


def test_without_a_request_an_organisation_is_the_same_viewer(world: World, access_settings):
    """The events feed, webhooks and exports hold only an org id: the same rule applies."""
    from sqlalchemy import select

    from gateway.persistence import tables as t
    from gateway.persistence.accounts import find_org
    from gateway.persistence.visibility import declarations_visible_to, viewer_of_org

    engine = get_engine(access_settings.db_url)
    with engine.connect() as conn:
        org_c = str(find_org(conn, "Platform C")["id"])  # type: ignore[index]

        def ids(who) -> set[str]:  # type: ignore[no-untyped-def]
            stmt = select(t.declarations.c.id).where(declarations_visible_to(who))
            return {r[0] for r in conn.execute(stmt)}

        assert ids(org_c) == ids(viewer_of_org(conn, org_c))
        assert world.b_id in ids(org_c) and world.a_id not in ids(org_c)
