"""T9, the leak scan: synthetic buyers go through the whole product (gateway, workers,
relay, sandbox, Redis); afterwards no buyer's ID number or phone is found in plaintext in
the database, Redis (every key, dumped and read), any file of the data dir (AOF, logs), the
run's log, or the API's answers to a party that is not the declarant or its broker."""

from __future__ import annotations

import os
import subprocess
import sys

from gateway.provisioning import create_org
from gateway.settings import load_settings
from tests.e2e.buyers import ceb621_for, synthetic_buyer
from tests.e2e.stack import PROJECT_ROOT, Stack, start_stack, wait_for_status
from tests.leak_scan import files_bytes, redis_bytes

BUYERS = int(os.environ.get("LEAK_SCAN_BUYERS", "12"))


def _non_declarant_answers(stack: Stack, ids: list[str]) -> bytes:
    """What a platform named on every list (ebpCode) reads through the API."""
    settings = load_settings(env={"GATEWAY_DATA_DIR": str(stack.data_dir)})
    _org, key = create_org(settings, "Platform P", ["1101110325"], "DXPENT0000000008")
    out = bytearray()
    with stack.client(key) as platform:
        out += platform.get("/api/v1/declarations?limit=200").content
        for did in ids:
            base = f"/api/v1/declarations/{did}"
            assert platform.get(base).status_code == 200
            xml = platform.get(base + "/message")
            assert xml.headers["X-Personal-Data"] == "masked"
            out += xml.content
            out += platform.get(base + "/message", headers={"Accept": "application/json"}).content
            assert platform.get(base + "/signed").status_code == 403
            out += platform.get(base).content
    return bytes(out)


def test_no_buyer_id_number_or_phone_is_stored_logged_or_shown_in_plaintext(tmp_path):
    buyers = [synthetic_buyer(i) for i in range(BUYERS)]
    stack = start_stack(tmp_path / "stack")
    try:
        ids = []
        with stack.client() as client:
            for b in buyers:
                resp = client.post(
                    "/api/v1/declarations",
                    content=ceb621_for(b),
                    headers={"Content-Type": "application/xml"},
                )
                assert resp.status_code == 202, resp.text
                ids.append(resp.json()["id"])
            for did in ids:
                wait_for_status(client, did, {"released", "closed"}, timeout=120)
            # The declarant reads its own data whole: the test would see a leak if there was one.
            whole = client.get(f"/api/v1/declarations/{ids[0]}/message").content
            assert buyers[0].id_number.encode() in whole
        places = {
            "redis": redis_bytes(f"redis://127.0.0.1:{_redis_port(stack)}/0"),
            "api (non-declarant)": _non_declarant_answers(stack, ids),
        }
    finally:
        stack.stop()
    places.update(files_bytes(stack.data_dir))  # database + WAL, Redis AOF, logs, keys
    leaks = [
        (where, secret)
        for b in buyers
        for secret in (b.id_number, b.phone)
        for where, content in places.items()
        if secret.encode() in content
    ]
    assert not leaks, leaks[:10]
    verified = subprocess.run(
        [sys.executable, "-m", "gateway", "audit", "verify"],
        cwd=PROJECT_ROOT,
        env={**_clean_env(), "GATEWAY_DATA_DIR": str(stack.data_dir)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert verified.returncode == 0, verified.stderr
    assert "audit chain OK" in verified.stdout


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GATEWAY_")}


def _redis_port(stack: Stack) -> int:
    for line in stack.log().splitlines():
        if line.strip().startswith("redis") and "redis://127.0.0.1:" in line:
            return int(line.split("redis://127.0.0.1:")[1].split("/")[0])
    raise AssertionError("the stack did not say where Redis is")
