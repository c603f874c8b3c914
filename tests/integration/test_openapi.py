"""The served OpenAPI document describes exactly the routes the app has."""

from __future__ import annotations

import re

from gateway import create_app
from gateway.settings import Settings


def test_every_route_is_documented_and_every_documented_route_exists(settings: Settings):
    app = create_app(settings)
    routes: dict[str, set[str]] = {}
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static" or rule.endpoint.startswith("web."):
            continue  # the dashboard's HTML pages are not part of the API
        path = re.sub(r"<(?:[^:>]+:)?([^>]+)>", r"{\1}", rule.rule)
        routes.setdefault(path, set()).update(
            m.lower() for m in rule.methods if m not in ("HEAD", "OPTIONS")
        )
    with app.test_client() as client:
        resp = client.get("/api/v1/openapi.json")
    assert resp.status_code == 200
    doc = resp.get_json()
    assert doc["openapi"].startswith("3.1")
    documented = {path: set(ops) for path, ops in doc["paths"].items()}
    assert documented == routes
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op["summary"] and op["responses"], (path, method)
            for param in re.findall(r"{([^}]+)}", path):
                assert any(p["name"] == param for p in op.get("parameters", [])), path


def test_real_answers_match_the_documented_shapes(settings: Settings, runtime):
    """A declared, receipted declaration read back through every documented JSON answer."""
    import jsonschema_rs

    from gateway.examples import fresh_ceb621
    from gateway.provisioning import ensure_demo_org
    from gateway.services.receipts import record_receipts
    from tests.integration.test_receipts import _receipt

    key = ensure_demo_org(settings)
    app = create_app(settings)
    headers = {"Authorization": f"Bearer {key}"}
    with app.test_client() as client:
        doc = client.get("/api/v1/openapi.json").get_json()
        accepted = client.post(
            "/api/v1/declarations",
            data=fresh_ceb621(documents=2),
            headers={**headers, "Content-Type": "application/xml"},
        )
        body = accepted.get_json()
        guid = body["declarations"][0]["guid"]
        for code in ("2", "120", "800"):
            record_receipts(runtime, _receipt(settings, guid, code))
        answers = {
            ("/api/v1/declarations", "post", "202"): body,
            ("/api/v1/declarations", "get", "200"): client.get(
                "/api/v1/declarations", headers=headers
            ).get_json(),
            ("/api/v1/declarations/counts", "get", "200"): client.get(
                "/api/v1/declarations/counts", headers=headers
            ).get_json(),
            ("/api/v1/declarations/{declaration_id}", "get", "200"): client.get(
                f"/api/v1/declarations/{body['id']}", headers=headers
            ).get_json(),
        }
    assert accepted.status_code == 202
    assert answers[("/api/v1/declarations/{declaration_id}", "get", "200")]["status"] == "released"
    for (path, method, status), answer in answers.items():
        schema = doc["paths"][path][method]["responses"][status]["content"]["application/json"]
        errors = [str(e) for e in jsonschema_rs.validator_for(schema["schema"]).iter_errors(answer)]
        assert schema["schema"] and not errors, (path, errors)
