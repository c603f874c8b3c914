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
