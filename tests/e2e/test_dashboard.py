"""The dashboard in a real headless Chromium against the real stack: sign in, upload a
parcel, watch the list clear live, filter, open the declaration page, trace, and see a
rejection and a detention explained. Screenshots land in tests/e2e/screenshots/.

Chromium is Debian's (/usr/bin/chromium, `make system-deps`); nothing is downloaded.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.examples import fresh_ceb621, fresh_parcel
from tests.e2e.stack import Stack, start_stack, wait_for_status

XML = "application/xml"
CHROMIUM = os.environ.get("GATEWAY_TEST_CHROMIUM", "/usr/bin/chromium")
SHOTS = Path(__file__).resolve().parent / "screenshots"
LAUNCH_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() or shutil.which(CHROMIUM)),
    reason=f"no Chromium at {CHROMIUM} (make system-deps installs Debian's)",
)


@pytest.fixture(scope="module")
def slow_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Receipts a second apart, so a person (and the test) can watch the status move."""
    running = start_stack(tmp_path_factory.mktemp("dashboard"), delays="1,1,1")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, slow_stack: Stack):
    context = browser.new_context(
        base_url=slow_stack.base, viewport={"width": 1360, "height": 900}, locale="zh-CN"
    )
    tab = context.new_page()
    tab.set_default_timeout(15_000)
    yield tab
    context.close()


def shot(page, name: str) -> None:
    SHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def sign_in(page, key: str) -> None:
    page.goto("/dashboard/")
    assert "/dashboard/login" in page.url
    shot(page, "01-login")
    page.fill("#api_key", key)
    page.click("button[type=submit]")
    page.wait_for_url("**/dashboard/")


def upload(page, tmp_path: Path, name: str, body: bytes, mode: str = "declare") -> None:
    path = tmp_path / name
    path.write_bytes(body)
    page.goto("/dashboard/upload")
    page.set_input_files("#file", str(path))
    page.check(f"input[name=mode][value={mode}]")
    page.click("form.upload button[type=submit]")
    page.wait_for_selector("#result")


def test_a_broker_follows_a_parcel_from_upload_to_gate_out(page, slow_stack: Stack, tmp_path):
    sign_in(page, slow_stack.api_key)
    parcel = fresh_parcel(buyer_id="11010519491231002X")
    wrong = parcel["CEB621"].replace(
        b"<ceb:gcode>1901101000</ceb:gcode>", b"<ceb:gcode>19011010</ceb:gcode>"
    )
    upload(page, tmp_path, "bad.xml", wrong, mode="validate")
    assert "Invalid" in page.inner_text("#result") and "gcode" in page.inner_text("#result")
    shot(page, "02-upload-invalid")
    for message_type in ("CEB311", "CEB411", "CEB511", "CEB621"):
        upload(page, tmp_path, f"{message_type}.xml", parcel[message_type])
        assert "Accepted" in page.inner_text("#result"), page.inner_text("#result")
    shot(page, "03-upload-accepted")
    page.click("#result a[href*='/dashboard/declarations/']")
    dossier = page.locator("#dossier")
    # Live: htmx polls the fragment; the page itself is never reloaded.
    page.evaluate("window.__same_page = true")
    dossier.and_(page.locator("[data-status=closed]")).wait_for(timeout=30_000)
    assert page.evaluate("window.__same_page") is True
    text = page.inner_text("#dossier")
    for expected in ("customs", "inspection", "800", "gate out", "Gateway estimate", "三单对碰"):
        assert expected in text, expected
    assert "11010519491231002X" not in page.content() and "110105********002X" in text
    assert page.locator("#dossier[hx-trigger]").count() == 0  # final: polling stopped
    shot(page, "04-declaration-closed")

    order_no = re.search(rb"<ceb:orderNo>([^<]+)<", parcel["CEB621"])[1].decode()  # type: ignore[index]
    pay = re.search(rb"<ceb:payTransactionId>([^<]+)<", parcel["CEB411"])[1].decode()  # type: ignore[index]
    page.goto("/dashboard/trace")
    page.fill("input[name=q]", pay)
    page.click("form.filters button[type=submit]")
    page.wait_for_selector(".chain")
    chain = page.inner_text(".chain")
    for expected in ("CEB311", "CEB411", "CEB511", "CEB621", "payTransactionId"):
        assert expected in chain, expected
    timeline = page.inner_text("table.timeline")
    assert "gate out" in timeline and "release queued" in timeline and "tax bill" in timeline
    shot(page, "05-trace")

    page.goto("/dashboard/")
    page.fill("input[name=q]", order_no[3:])
    page.select_option("select[name=type]", "CEB621")
    page.click("form.filters button[type=submit]")
    page.wait_for_url("**q=*")
    rows = page.locator("#list tbody tr")
    assert rows.count() == 1 and "closed" in rows.inner_text()


def _declare(api: httpx.Client) -> str:
    body = fresh_ceb621()
    resp = api.post("/api/v1/declarations", content=body, headers={"Content-Type": XML})
    assert resp.status_code == 202, resp.text
    return str(resp.json()["id"])


def _held_and_rejected(stack: Stack) -> tuple[str, str]:
    """One list inspected and held (501), one rejected by customs for 三单不齐 (strict)."""
    with stack.client() as api, httpx.Client(base_url=stack.sandbox, timeout=10) as sandbox:
        try:
            sandbox.post("/admin/risk", json={"customs_rate": 1, "hold_rate": 1})
            held = _declare(api)
            wait_for_status(api, held, {"held"}, timeout=30)
            sandbox.post("/admin/reset")
            sandbox.post("/admin/risk", json={"match_mode": "strict"})
            lone = _declare(api)
            wait_for_status(api, lone, {"rejected"}, timeout=30)
        finally:
            sandbox.post("/admin/reset")
        for _ in range(3):  # a few that clear, for the list and the chart
            _declare(api)
    return held, lone


def test_rejections_and_detentions_are_explained_and_need_action(page, slow_stack: Stack):
    held, lone = _held_and_rejected(slow_stack)
    sign_in(page, slow_stack.api_key)
    page.goto(f"/dashboard/declarations/{lone}")
    rejection = page.inner_text(".rejection")
    assert "三单不齐" in rejection and "Order, payment or waybill missing" in rejection
    assert page.locator("#dossier[hx-trigger]").count() == 0
    shot(page, "06-declaration-rejected")
    page.goto(f"/dashboard/declarations/{held}")
    assert "Detained after inspection" in page.inner_text(".rejection")
    assert "联合查验 Joint inspection" in page.inner_text("#dossier")
    shot(page, "07-declaration-held")

    page.goto("/dashboard/action")
    listed = page.inner_text("#list")
    assert lone in listed and held in listed and "三单不齐" in listed
    shot(page, "08-action-needed")

    page.goto("/dashboard/")
    page.locator(".counts a.s-rejected").click()
    page.wait_for_url("**status=rejected*")
    assert lone in page.inner_text("#list") and held not in page.inner_text("#list")
    page.goto("/dashboard/")
    page.wait_for_timeout(1500)
    shot(page, "09-declarations")

    page.goto("/dashboard/monitor")
    assert page.locator("svg.chart rect.import").count() >= 7
    shot(page, "10-monitor")
    page.click("form.who button")
    page.wait_for_url("**/dashboard/login")
