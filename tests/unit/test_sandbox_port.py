"""The sandbox port: manifests in, signed arrival and gate-out events out, exactly one
release per consignment (a second one is 409), and refusals as HTTP errors."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from schemas.registry import PORT_NS
from tests.sandbox.harness import World, manifest, release, sign, start_world

_P = f"{{{PORT_NS}}}"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    w = start_world(tmp_path_factory.mktemp("port"))
    yield w
    w.stop()


@pytest.fixture(autouse=True)
def _reset(world: World) -> None:
    assert world.admin("reset", {}).status_code == 200


def _send(world: World, root, msg_type: str, cop: str | None = None) -> httpx.Response:
    return world.post(
        "port",
        sign(root, world.gateway_key),
        msg_type,
        cop=cop,
        sender=world.settings.gateway_dxp_id,
    )


def _numbers(n: int = 1) -> list[str]:
    return [f"LN{uuid.uuid4().hex[:12].upper()}" for _ in range(n)]


def test_a_manifest_is_answered_with_a_signed_arrival_per_consignment(world: World):
    numbers = _numbers(2)
    resp = _send(world, manifest(numbers), "PortManifest", cop="dsp_manifest_1")
    assert resp.status_code == 200
    assert resp.json() == {
        "status": "accepted",
        "copMsgId": "dsp_manifest_1",
        "consignments": numbers,
    }
    (arrival,) = world.receiver.wait_for(
        lambda p: (
            p.msg_type == "PortArrival"
            and p.root.findtext(f"{_P}Consignment/{_P}logisticsNo") == numbers[0]
        )
    )
    assert arrival.path == "/api/v1/port/events"
    assert arrival.sender == world.settings.port_dxp_id
    assert arrival.receivers == (world.settings.gateway_dxp_id,)
    assert not arrival.violations
    assert re.fullmatch(r"[0-9A-F-]{36}", arrival.root.get("id", ""))
    assert arrival.root.findtext(f"{_P}portCode") == "4601"
    got = [c.findtext(f"{_P}logisticsNo") for c in arrival.root.iterfind(f"{_P}Consignment")]
    assert got == numbers
    stamp = arrival.root.findtext(f"{_P}Consignment/{_P}arrivedAt") or ""
    assert datetime.fromisoformat(stamp).utcoffset() is not None
    records = world.records()["port"]
    assert records["manifests"][numbers[0]] == 1 and records["arrivals"] >= 1


def test_release_once_then_409_for_a_second_release(world: World):
    (number,) = _numbers()
    _send(world, manifest([number]), "PortManifest")
    first = _send(world, release(number), "PortRelease", cop="dsp_release_first")
    assert first.status_code == 200
    assert first.json() == {
        "status": "released",
        "copMsgId": "dsp_release_first",
        "logisticsNo": number,
    }
    again = _send(world, release(number), "PortRelease", cop="dsp_release_first")
    assert again.status_code == 200 and again.json()["status"] == "duplicate"
    second = _send(world, release(number), "PortRelease", cop="dsp_release_second")
    assert second.status_code == 409
    assert second.json() == {
        "error": "already released",
        "logisticsNo": number,
        "first_copMsgId": "dsp_release_first",
    }
    (gate_out,) = world.receiver.wait_for(
        lambda p: (
            p.msg_type == "PortGateOut"
            and p.root.findtext(f"{_P}Consignment/{_P}logisticsNo") == number
        )
    )
    assert not gate_out.violations
    assert gate_out.root.findtext(f"{_P}Consignment/{_P}invtNo") == "46012026I000000002"
    records = world.records()["port"]
    assert records["releases"][number] == 1
    assert records["second_releases"] >= 1
    assert records["gate_outs"] >= 1


def test_a_release_without_a_manifest_is_404(world: World):
    (number,) = _numbers()
    resp = _send(world, release(number), "PortRelease")
    assert resp.status_code == 404 and resp.json()["logisticsNo"] == number


def test_a_bad_signature_or_unregistered_sender_is_403(world: World):
    (number,) = _numbers()
    forged = world.post(
        "port",
        sign(manifest([number]), world.declarant),
        "PortManifest",
        sender=world.settings.gateway_dxp_id,
    )
    assert forged.status_code == 403 and "signature" in forged.json()["error"]
    stranger = world.post(
        "port",
        sign(manifest([number]), world.gateway_key),
        "PortManifest",
        sender="DXPNOBODY0000001",
    )
    assert stranger.status_code == 403
    assert number not in world.records()["port"]["manifests"]


def test_an_invalid_manifest_is_400_with_violations(world: World):
    root = manifest(_numbers())
    root.find(f"{_P}portCode").text = "xx"  # type: ignore[union-attr]
    resp = _send(world, root, "PortManifest")
    assert resp.status_code == 400 and resp.json()["violations"]


def test_port_events_can_be_polled(world: World):
    (number,) = _numbers()
    _send(world, manifest([number]), "PortManifest")
    world.receiver.wait_for(
        lambda p: (
            p.msg_type == "PortArrival"
            and p.root.findtext(f"{_P}Consignment/{_P}logisticsNo") == number
        )
    )
    body = httpx.get(
        world.base + "/port/events", params={"receiver": world.settings.gateway_dxp_id}
    ).json()
    assert body["receipts"] and body["next"] == body["receipts"][-1]["seq"]


def test_port_faults_apply_too(world: World):
    world.admin("faults", {"authority": "port", "outage_seconds": 5})
    resp = _send(world, manifest(_numbers()), "PortManifest")
    assert resp.status_code == 503 and "Retry-After" in resp.headers
    world.admin("faults", {"authority": "port", "outage": None, "ack_lost_rate": 1})
    (number,) = _numbers()
    lost = _send(world, manifest([number]), "PortManifest", cop="dsp_port_lost")
    assert lost.status_code == 500
    assert world.records()["port"]["manifests"][number] == 1
    world.admin("faults", {"authority": "port", "ack_lost_rate": 0})
    retry = _send(world, manifest([number]), "PortManifest", cop="dsp_port_lost")
    assert retry.json()["status"] == "duplicate"
