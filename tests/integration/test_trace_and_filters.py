"""The trace API and the list filters, over the real app on SQLite: a number leads to the
whole parcel for its owner and to nothing for anyone else; every filter narrows, every bad
value is a 422 that names the parameter."""

from __future__ import annotations

import re
import uuid
from datetime import date, timedelta

import pytest
from lxml import etree

from adapters.dxp import Envelope, build_envelope
from gateway import create_app
from gateway.examples import fresh_ceb621, fresh_parcel
from gateway.provisioning import create_org, ensure_demo_org, sandbox_key_paths
from gateway.settings import Settings
from sandbox.receipts import inventory_return
from signing import load_signing_key, sign_enveloped

XML = {"Content-Type": "application/xml"}


@pytest.fixture
def app(settings: Settings, org_id: str):
    return create_app(settings)


@pytest.fixture
def client(app, settings: Settings):
    key = ensure_demo_org(settings)
    c = app.test_client()  # no `with`: a kept request context would share `g` between clients
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return c


@pytest.fixture
def stranger(app, settings: Settings):
    """Another organisation, with codes of its own."""
    _, key = create_org(settings, "Other Broker Ltd.", ["9999999999"], "DXPOTHER00000001")
    c = app.test_client()
    c.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {key}"
    return c


def _declare(client, body: bytes) -> str:
    resp = client.post("/api/v1/declarations", data=body, headers=XML)
    assert resp.status_code == 202, resp.get_json()
    return str(resp.get_json()["id"])


def _parcel(client) -> dict[str, object]:
    parcel = fresh_parcel()
    bar = "69" + uuid.uuid4().hex[:11].upper()
    ids = {}
    for message_type, body in parcel.items():
        ids[message_type] = _declare(client, body.replace(b"4901234567894", bar.encode()))
    text = parcel["CEB621"].decode()

    def field(name: str) -> str:
        return re.search(rf"<ceb:{name}>([^<]+)<", text).group(1)  # type: ignore[union-attr]

    pay = re.search(r"<ceb:payTransactionId>([^<]+)<", parcel["CEB411"].decode())
    return {
        "ids": ids,
        "orderNo": field("orderNo"),
        "logisticsNo": field("logisticsNo"),
        "copNo": field("copNo"),
        "payTransactionId": pay.group(1),  # type: ignore[union-attr]
        "barCode": bar,
    }


def _reject(client, settings: Settings, declaration_id: str, info: str) -> None:
    """Customs answers 100 (signed with the sandbox customs key, delivered over the API)."""
    guid = client.get(f"/api/v1/declarations/{declaration_id}").get_json()["guid"]
    root = inventory_return(
        {
            "guid": guid,
            "copNo": "COP1",
            "preNo": "B20261123000000001",
            "invtNo": "",
            "returnStatus": "100",
            "returnTime": "20261123120000100",
            "returnInfo": info,
        }
    )
    sign_enveloped(root, load_signing_key(*sandbox_key_paths(settings, "customs")))
    body = build_envelope(
        Envelope(
            "R-" + uuid.uuid4().hex,
            settings.customs_dxp_id,
            (settings.demo_org_dxp_id,),
            "CEB622",
            etree.tostring(root),
        )
    )
    assert client.post("/api/v1/receipts", data=body, headers=XML).status_code == 200


def test_any_number_of_a_parcel_traces_its_whole_chain(client, stranger):
    parcel = _parcel(client)
    ids = parcel["ids"]
    for name in ("orderNo", "logisticsNo", "copNo", "payTransactionId", "barCode"):
        resp = client.get("/api/v1/trace", query_string={"q": parcel[name]})
        assert resp.status_code == 200, (name, resp.get_json())
        body = resp.get_json()
        assert body["chain"] == {
            "order": [ids["CEB311"]],
            "payment": [ids["CEB411"]],
            "waybill": [ids["CEB511"]],
            "inventory": [ids["CEB621"]],
        }, name
        kinds = {(e["declaration_id"], e["kind"]) for e in body["events"]}
        assert (ids["CEB621"], "accepted") in kinds and (ids["CEB311"], "signed") in kinds
        by = {d["id"]: d["matched_by"] for d in body["declarations"]}
        if name == "payTransactionId":
            assert by[ids["CEB311"]] == by[ids["CEB411"]] == "payTransactionId"
        if name == "barCode":
            assert by[ids["CEB621"]] == "barCode" and by[ids["CEB411"]] is None
        # Foreign = nonexistent: the same 404 as a number nobody declared.
        foreign = stranger.get("/api/v1/trace", query_string={"q": parcel[name]})
        assert foreign.status_code == 404
        assert parcel[name] not in foreign.get_data(as_text=True).replace(f"'{parcel[name]}'", "")
    assert client.get("/api/v1/trace?q=NOSUCHNUMBER1").status_code == 404


def test_trace_refuses_an_empty_or_oversized_number(client):
    for q in ("", "   ", "x" * 61):
        resp = client.get("/api/v1/trace", query_string={"q": q})
        assert resp.status_code == 422 and resp.get_json()["errors"][0]["path"] == "?q"


def test_a_barcode_inside_a_document_is_confirmed_not_guessed(client):
    parcel = _parcel(client)
    # A number that only appears as part of another element's text is no hit.
    resp = client.get("/api/v1/trace", query_string={"q": str(parcel["barCode"])[:-1]})
    assert resp.status_code == 404


def _ids(client, **query: str) -> set[str]:
    resp = client.get("/api/v1/declarations", query_string=query)
    assert resp.status_code == 200, resp.get_json()
    return {i["id"] for i in resp.get_json()["items"]}


def test_filters_narrow_the_list_and_the_counts(client, stranger, settings: Settings):
    parcel = _parcel(client)
    ids = parcel["ids"]
    lone = _declare(client, fresh_ceb621())
    _reject(client, settings, lone, "逻辑校验失败：订购人姓名与订单不符 / inventory buyerName 李四")
    everything = set(ids.values()) | {lone}
    assert _ids(client) == everything
    assert _ids(client, status="rejected") == {lone}
    assert _ids(client, status="rejected,accepted") == everything
    assert _ids(client, authority_status="100") == {lone}
    assert _ids(client, type="CEB311") == {ids["CEB311"]}
    assert _ids(client, q=str(parcel["orderNo"])[3:12].lower()) >= {ids["CEB311"], ids["CEB621"]}
    assert lone not in _ids(client, q=str(parcel["orderNo"]))
    assert _ids(client, q=str(parcel["copNo"])) == {ids["CEB621"]}
    lists = {ids["CEB621"], lone}
    assert _ids(client, code="1105910159") == lists  # the broker's agentCode
    assert _ids(client, code="1101180326") == lists | {ids["CEB511"]}  # the logistics co.
    assert _ids(client, code="110591015") == set()  # a whole code, not a prefix
    today, tomorrow = date.today(), date.today() + timedelta(days=2)
    yesterday = today - timedelta(days=2)
    assert _ids(client, since=str(yesterday), until=str(tomorrow)) == everything
    assert _ids(client, since=str(tomorrow)) == set()
    assert _ids(client, until=str(yesterday)) == set()
    assert _ids(client, since="2000-01-01T00:00:00Z") == everything
    # Cursor pagination keeps the filter.
    seen, cursor = [], None
    while True:
        query = {"status": "accepted", "limit": "2", **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/declarations", query_string=query).get_json()
        seen += [i["id"] for i in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert sorted(seen, reverse=True) == seen and set(seen) == set(ids.values())

    counts = client.get("/api/v1/declarations/counts").get_json()
    assert counts["total"] == 5
    assert counts["by_status"]["accepted"] == 4 and counts["by_status"]["rejected"] == 1
    typed = client.get("/api/v1/declarations/counts?type=CEB621").get_json()
    assert typed["by_status"]["accepted"] == 1 and typed["total"] == 2
    assert _ids(stranger) == set()
    assert stranger.get("/api/v1/declarations/counts").get_json()["total"] == 0


BAD_FILTERS = [
    ({"status": "bogus"}, "?status"),
    ({"status": "accepted,nope"}, "?status"),
    ({"authority_status": "abc"}, "?authority_status"),
    ({"type": "621"}, "?type"),
    ({"since": "yesterday"}, "?since"),
    ({"until": "2026-13-01"}, "?until"),
    ({"since": "2026-11-02", "until": "2026-11-01"}, "?until"),
    ({"code": "11%"}, "?code"),
    ({"q": "x" * 61}, "?q"),
    ({"limit": "0"}, "?limit"),
    ({"limit": "many"}, "?limit"),
    ({"cursor": "not-a-cursor"}, "?cursor"),
]


def test_a_bad_filter_is_a_422_naming_the_parameter(client):
    for query, path in BAD_FILTERS:
        for endpoint in ("/api/v1/declarations", "/api/v1/declarations/counts"):
            resp = client.get(endpoint, query_string=query)
            assert resp.status_code == 422, (endpoint, query)
            assert resp.mimetype == "application/problem+json"
            assert [e["path"] for e in resp.get_json()["errors"]] == [path]
