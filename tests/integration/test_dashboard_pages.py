"""The dashboard over the Flask client: signing in with a key, CSRF on every form, every page
rendering, personal data masked, and another organisation's declaration a 404."""

from __future__ import annotations

import io
import re

import pytest

from gateway import create_app
from gateway.examples import fresh_parcel
from gateway.provisioning import create_org, ensure_demo_org
from gateway.settings import Settings

XML = {"Content-Type": "application/xml"}


def _token(html: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def _signed_in(app, key: str):
    browser = app.test_client()
    token = _token(browser.get("/dashboard/login").get_data(as_text=True))
    resp = browser.post("/dashboard/login", data={"api_key": key, "csrf_token": token})
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/dashboard/")
    return browser


@pytest.fixture
def app(settings: Settings, org_id: str):
    return create_app(settings)


@pytest.fixture
def key(settings: Settings) -> str:
    return ensure_demo_org(settings)


def test_pages_need_a_sign_in_and_forms_need_the_csrf_token(app, key, settings: Settings):
    anonymous = app.test_client()
    resp = anonymous.get("/dashboard/action")
    assert resp.status_code == 302 and "/dashboard/login?next=/dashboard/action" in resp.location
    # A form posted without (or with another session's) token is refused.
    assert anonymous.post("/dashboard/login", data={"api_key": key}).status_code == 400
    other = app.test_client()
    stolen = _token(other.get("/dashboard/login").get_data(as_text=True))
    anonymous.get("/dashboard/login")
    refused = anonymous.post("/dashboard/login", data={"api_key": key, "csrf_token": stolen})
    assert refused.status_code == 400
    token = _token(anonymous.get("/dashboard/login").get_data(as_text=True))
    wrong = anonymous.post("/dashboard/login", data={"api_key": "swg_nope", "csrf_token": token})
    assert wrong.status_code == 401 and "unknown or revoked" in wrong.get_data(as_text=True)
    browser = _signed_in(app, key)
    cookie = browser.get_cookie("session")
    assert cookie is not None and key not in cookie.value  # only a signed hash, never the key
    assert (settings.data_path / "web-secret").stat().st_mode & 0o777 == 0o600
    page = browser.get("/dashboard/").get_data(as_text=True)
    assert "Demo Broker Co." in page
    assert browser.post("/dashboard/logout").status_code == 400  # no token
    out = browser.post("/dashboard/logout", data={"csrf_token": _token(page)})
    assert out.status_code == 302
    assert browser.get("/dashboard/").status_code == 302


def test_every_page_renders_and_masks_personal_data(app, key, settings: Settings):
    browser = _signed_in(app, key)
    parcel = fresh_parcel(buyer_id="11010519491231002X")
    ids = {}
    for message_type, body in parcel.items():
        token = _token(browser.get("/dashboard/upload").get_data(as_text=True))
        resp = browser.post(
            "/dashboard/upload",
            data={
                "csrf_token": token,
                "mode": "declare",
                "file": (io.BytesIO(body), f"{message_type}.xml"),
            },
            content_type="multipart/form-data",
        )
        html = resp.get_data(as_text=True)
        assert resp.status_code == 200 and "Accepted" in html, html[-2000:]
        ids[message_type] = re.search(r"/dashboard/declarations/(dcl_[0-9a-f]+)", html).group(1)
    inventory = ids["CEB621"]
    pages = {
        "/dashboard/": inventory,
        "/dashboard/?type=CEB621&q=ORD": inventory,
        "/dashboard/action": "Action needed",
        f"/dashboard/declarations/{inventory}": "三单对碰",
        "/dashboard/monitor": "<svg",
        "/dashboard/trace?q="
        + re.search(rb"<ceb:orderNo>([^<]+)<", parcel["CEB621"])[1].decode(): ids["CEB411"],
        "/dashboard/upload": "Validate only",
    }
    for path, expected in pages.items():
        resp = browser.get(path)
        html = resp.get_data(as_text=True)
        assert resp.status_code == 200 and expected in html, path
        for secret in ("11010519491231002X", "13800138000", "北京市朝阳区示例路1号", "张三"):
            assert secret not in html, (path, secret)
    upload = browser.get("/dashboard/upload").get_data(as_text=True)
    title = re.search(r"<title>(.*?)</title>", upload, re.S)
    assert title and title.group(1) == "Upload · 单一窗口 Single Window"  # no form in the title
    assert upload.count('id="batch-upload"') <= 1
    page = browser.get(f"/dashboard/declarations/{inventory}").get_data(as_text=True)
    assert "110105********002X" in page and "张*" in page
    assert 'hx-trigger="every 2s"' in page  # live until it is final
    partial = browser.get(f"/dashboard/declarations/{inventory}", headers={"HX-Request": "true"})
    assert partial.get_data(as_text=True).lstrip().startswith("{") is False
    assert "<html" not in partial.get_data(as_text=True)
    bad = browser.get("/dashboard/?since=nope&limit=0").get_data(as_text=True)
    assert "?since" in bad and "?limit" in bad
    # Another organisation's declaration does not exist for this one.
    _, other_key = create_org(settings, "Other Broker Ltd.", ["9999999999"], "DXPOTHER00000001")
    stranger = _signed_in(app, other_key)
    assert stranger.get(f"/dashboard/declarations/{inventory}").status_code == 404
    assert inventory not in stranger.get("/dashboard/").get_data(as_text=True)
    assert stranger.get("/dashboard/trace?q=" + inventory).status_code == 404


def test_upload_validates_without_declaring(app, key):
    browser = _signed_in(app, key)
    body = fresh_parcel()["CEB621"].replace(
        b"<ceb:currency>142</ceb:currency>", b"<ceb:currency>502</ceb:currency>", 1
    )
    token = _token(browser.get("/dashboard/upload").get_data(as_text=True))
    resp = browser.post(
        "/dashboard/upload",
        data={
            "csrf_token": token,
            "mode": "validate",
            "file": (io.BytesIO(body), "bad.xml"),
        },
        content_type="multipart/form-data",
    )
    html = resp.get_data(as_text=True)
    assert "Invalid" in html and "currency" in html
    assert "No declarations match" in browser.get("/dashboard/").get_data(as_text=True)


def test_every_page_announces_a_planned_outage_ahead_of_time(app, key, settings: Settings):
    from datetime import timedelta

    from gateway.persistence import repository as repo
    from gateway.persistence.database import get_engine
    from gateway.services.outages import announce

    browser = _signed_in(app, key)
    assert "outage-banner" not in browser.get("/dashboard/").get_data(as_text=True)
    start = repo.now() + timedelta(hours=3)
    announce(get_engine(settings.db_url), "customs", start, start + timedelta(hours=1), "升级", "t")
    app.extensions.pop("gateway.notices", None)  # the notice board's cache, per process
    for path in ("/dashboard/", "/dashboard/upload", "/dashboard/action"):
        html = browser.get(path).get_data(as_text=True)
        assert "outage-banner" in html and "计划停机 Planned outage" in html, path
        assert "customs" in html and "升级" in html
