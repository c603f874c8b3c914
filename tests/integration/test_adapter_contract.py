"""One contract every authority adapter passes against the sandbox over HTTP.

Customs, inspection and the port are reached by the same client shape; each must: deliver
the signed bytes once (a retry under the same dispatch id changes nothing), map outages,
5xx and timeouts to retryable errors, map refusals to terminal ones, and stop calling an
authority that keeps failing (circuit breaker) until it is likely back.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from adapters.breaker import CircuitBreaker
from adapters.customs import CustomsClient
from adapters.dxp_client import DxpAuthorityClient
from adapters.inspection import InspectionClient
from adapters.port import PortClient
from adapters.transport import HttpTransport
from gateway.domain.errors import RetryableAuthorityError, TerminalAuthorityError
from tests.sandbox.harness import DECLARANT, World, family, manifest, sign, start_world


@dataclass
class Case:
    name: str
    client_class: type[DxpAuthorityClient]
    msg_type: str
    sender: str


CASES = [
    Case("customs", CustomsClient, "CEB621", DECLARANT),
    Case("inspection", InspectionClient, "CEB621", DECLARANT),
    Case("port", PortClient, "PortManifest", "gateway"),
]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    running = start_world(Path(tmp_path_factory.mktemp("contract")))
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def _reset(world: World) -> Iterator[None]:
    world.admin("reset", {}).raise_for_status()
    yield
    world.admin("reset", {}).raise_for_status()


def _client(
    world: World, case: Case, *, read_timeout: float = 2.0, failures: int = 100
) -> DxpAuthorityClient:
    url = f"{world.base}/{case.name}/dxp"
    receiver = getattr(world.settings, f"{case.name}_dxp_id")
    breaker = CircuitBreaker(case.name, failures=failures, reset_seconds=60)
    return case.client_class(url, receiver, HttpTransport(0.5, read_timeout), breaker)


def _message(world: World, case: Case) -> tuple[bytes, str]:
    if case.name == "port":
        return sign(
            manifest([f"LN{uuid.uuid4().hex[:10]}"]), world.gateway_key
        ), world.settings.gateway_dxp_id
    return sign(family().inventory, world.declarant), case.sender


def _messages_seen(world: World, case: Case) -> int:
    records = world.records()[case.name]
    return int(records.get("message_count", len(records.get("messages", {}))))


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_message_is_delivered_once_even_when_sent_twice(world: World, case: Case):
    client = _client(world, case)
    body, sender = _message(world, case)
    before = _messages_seen(world, case)
    duplicates = world.records()[case.name]["duplicates"]
    dispatch_id = "dsp_" + uuid.uuid4().hex
    client.send(dispatch_id, case.msg_type, body, sender)
    client.send(dispatch_id, case.msg_type, body, sender)  # a retry of the same bytes
    assert _messages_seen(world, case) == before + 1
    assert world.records()[case.name]["duplicates"] == duplicates + 1


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize(
    "fault", [{"outage_seconds": 30}, {"error_rate": 1}, {"timeout_rate": 1, "timeout_seconds": 3}]
)
def test_outages_errors_and_timeouts_are_retryable(world: World, case: Case, fault: dict):
    world.admin("faults", {"authority": case.name, **fault}).raise_for_status()
    client = _client(world, case, read_timeout=0.5)
    body, sender = _message(world, case)
    before = _messages_seen(world, case)
    with pytest.raises(RetryableAuthorityError):
        client.send("dsp_" + uuid.uuid4().hex, case.msg_type, body, sender)
    assert _messages_seen(world, case) == before  # refused, so nothing was taken


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_a_refused_envelope_is_terminal(world: World, case: Case):
    client = _client(world, case)
    with pytest.raises(TerminalAuthorityError):
        client.transport.post(
            client.url, b"<not-an-envelope/>", {"Content-Type": "application/xml"}
        )


def test_a_second_release_of_a_consignment_is_terminal(world: World):
    port = _client(world, CASES[2])
    number = f"LN{uuid.uuid4().hex[:10]}"
    gateway = world.settings.gateway_dxp_id
    from tests.sandbox.harness import release

    port.send(
        "dsp_" + uuid.uuid4().hex,
        "PortManifest",
        sign(manifest([number]), world.gateway_key),
        gateway,
    )
    port.send(
        "dsp_" + uuid.uuid4().hex, "PortRelease", sign(release(number), world.gateway_key), gateway
    )
    with pytest.raises(TerminalAuthorityError) as err:
        port.send(
            "dsp_" + uuid.uuid4().hex,
            "PortRelease",
            sign(release(number), world.gateway_key),
            gateway,
        )
    assert "409" in str(err.value)
    assert world.records()["port"]["releases"][number] == 1


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_the_circuit_opens_after_repeated_failures_and_fails_fast(world: World, case: Case):
    world.admin("faults", {"authority": case.name, "error_rate": 1}).raise_for_status()
    client = _client(world, case, failures=3)
    body, sender = _message(world, case)
    for _ in range(3):
        with pytest.raises(RetryableAuthorityError):
            client.send("dsp_" + uuid.uuid4().hex, case.msg_type, body, sender)
    assert client.breaker.is_open
    world.admin("reset", {}).raise_for_status()
    with pytest.raises(RetryableAuthorityError, match="circuit open"):
        client.send("dsp_" + uuid.uuid4().hex, case.msg_type, body, sender)
