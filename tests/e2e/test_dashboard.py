"""The dashboard in a real headless Chromium against the real stack: sign in, upload a
parcel, watch the list clear live, filter, open the declaration page, trace, and see a
rejection and a detention explained; a user signs in with a password, uploads a CSV batch
and reads its per-row result, and makes and revokes an API key. Screenshots land in
tests/e2e/screenshots/.

Chromium is Debian's (/usr/bin/chromium, `make system-deps`); nothing is downloaded.
"""

from __future__ import annotations

import csv
import io
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.examples import fresh_ceb621, fresh_parcel
from tests.e2e.stack import PROJECT_ROOT, Stack, start_stack, wait_for_status

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
    page.click("form.key button[type=submit]")
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


def _create_user(stack: Stack, username: str, password: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}
    env.update({"GATEWAY_DATA_DIR": str(stack.data_dir), "PW": password})
    subprocess.run(
        [sys.executable, "-m", "gateway", "users", "create", "--org", "Demo Broker Co.",
         "--username", username, "--role", "broker", "--password-env", "PW"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, timeout=60, check=True,
    )  # fmt: skip


def _payments_csv(stack: Stack) -> bytes:
    """The payment template's example row, and a second payment whose currency is wrong,
    saved in GBK as Chinese Excel does."""
    with stack.client() as api:
        text = api.get("/api/v1/templates/CEB411.csv").content.decode("utf-8-sig")
    header, good = list(csv.reader(io.StringIO(text)))[:2]
    bad = list(good)
    bad[header.index("payTransactionId")] = "PAY-E2E-SECOND-1"
    bad[header.index("orderNo")] = good[header.index("orderNo")] + "B"
    bad[header.index("currency")] = "XYZ"
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerows([header, good, bad])
    return out.getvalue().encode("gbk")


def test_a_user_signs_in_uploads_a_batch_and_manages_keys(page, slow_stack: Stack, tmp_path):
    _create_user(slow_stack, "li.wei", "a long enough secret")
    page.goto("/dashboard/")
    page.fill("#username", "li.wei")
    page.fill("#password", "not the password")
    page.click("form.password button[type=submit]")
    assert "Wrong username or password" in page.inner_text("[role=alert]")
    page.fill("#password", "a long enough secret")
    shot(page, "11-login-password")
    page.click("form.password button[type=submit]")
    page.wait_for_url("**/dashboard/")
    assert "li.wei" in page.inner_text("form.who")

    path = tmp_path / "付款单.csv"
    path.write_bytes(_payments_csv(slow_stack))
    page.goto("/dashboard/upload")
    page.set_input_files("#batch_file", str(path))
    page.click("form.batch button[type=submit]")
    page.wait_for_url(re.compile(r".*/dashboard/batches/bat_[0-9a-f]+$"))
    page.evaluate("window.__same_page = true")
    page.locator("#batch[data-status=done]").wait_for(timeout=30_000)
    assert page.evaluate("window.__same_page") is True  # htmx polled; no reload
    assert "accepted" in page.inner_text("#item-1")
    bad = page.inner_text("#item-2")
    assert "rejected" in bad and "currency" in bad and "XYZ" in bad and "固定值" in bad
    assert "1 accepted" in page.inner_text("#batch") and "1 rejected" in page.inner_text("#batch")
    shot(page, "12-batch-result")

    page.click("header nav a[href$='/dashboard/keys']")
    page.fill("input[name=label]", "warehouse")
    page.select_option("select[name=role]", "port")
    page.click("form.newkey button[type=submit]")
    secret = page.inner_text("#secret")
    assert secret.startswith("swg_")
    with slow_stack.client(secret) as api:
        assert api.get("/api/v1/declarations").status_code == 200
    shot(page, "13-keys-created")
    page.on("dialog", lambda dialog: dialog.accept())
    page.locator("tr", has_text="warehouse").locator("form.revoke button").click()
    page.wait_for_url("**/dashboard/keys?revoked=*")
    assert page.locator("tr.revoked", has_text="warehouse").count() == 1
    with slow_stack.client(secret) as api:
        assert api.get("/api/v1/declarations").status_code == 401
    shot(page, "14-keys-revoked")
