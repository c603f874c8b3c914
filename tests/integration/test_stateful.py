"""A hypothesis state machine over the real services: any interleaving of receipts (every
code, from both authorities), duplicates, reorderings and port events keeps the promises:
at most one release and one joint inspection per consignment, no release without every
clearance and the arrival, terminal statuses absorbing, and an append-only timeline."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
import redis
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from lxml import etree
from sqlalchemy import func, select

from adapters.dxp import Envelope, build_envelope
from gateway.bootstrap import build_runtime
from gateway.domain.statuses import TERMINAL_STATUSES, DeclarationStatus, Phase
from gateway.examples import fresh_ceb621
from gateway.persistence import repository as repo
from gateway.persistence import tables as t
from gateway.provisioning import ensure_demo_org, ensure_keys, init_db, sandbox_key_paths
from gateway.services.declare import declare
from gateway.services.port_events import record_port_events
from gateway.services.receipts import record_receipts
from gateway.settings import load_settings
from sandbox.receipts import inventory_return
from schemas.registry import PORT_NS
from signing import load_signing_key, sign_enveloped
from tests.e2e.stack import free_port

CODES = ["2", "120", "300", "399", "500", "501", "503", "800", "899", "100", "700", "-1"]
AUTHORITIES = ["customs", "inspection"]


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, redis_url: str):
    s = load_settings(
        env={},
        data_dir=str(tmp_path_factory.mktemp("stateful")),
        redis_url=redis_url,
        sandbox_port=free_port(),
        doorbell_grace=60.0,
        inspection_hs_prefixes="19",
        port_message_types="CEB621",
    )
    ensure_keys(s)
    init_db(s)
    ensure_demo_org(s)
    rt = build_runtime(s)
    rt = type(rt)(**{**rt.__dict__, "ring": lambda ids: None})
    keys = {a: load_signing_key(*sandbox_key_paths(s, a)) for a in (*AUTHORITIES, "port")}
    with rt.engine.connect() as conn:
        org = repo.find_org_by_name(conn, s.demo_org_name)
    yield s, rt, keys, org["id"]
    rt.engine.dispose()
    redis.Redis.from_url(redis_url).flushdb()


class Clearance(RuleBasedStateMachine):
    """One consignment per example, driven through the real receipt and port services."""

    world: tuple = ()

    def __init__(self) -> None:
        super().__init__()
        self.s, self.rt, self.keys, org_id = self.world
        acc = declare(self.rt, org_id, fresh_ceb621(), "application/xml")
        self.did, self.guid = acc.declarations[0].id, acc.declarations[0].doc_guid
        with self.rt.engine.connect() as conn:
            self.logistics_no = repo.get_declaration(conn, self.did)["logistics_no"]
        self.sent: list[bytes] = []
        self.terminal: str | None = None
        self.events = 0
        self.n = 0

    def _receipt(self, authority: str, code: str) -> bytes:
        self.n += 1
        root = inventory_return(
            {
                "guid": self.guid,
                "copNo": "C1",
                "preNo": "B" + "1" * 17,
                "invtNo": "46012026I000000001",
                "returnStatus": code,
                "returnTime": f"20261123{self.n:09d}",
                "returnInfo": "x",
            }
        )
        sign_enveloped(root, self.keys[authority])
        return build_envelope(
            Envelope(
                uuid.uuid4().hex,
                getattr(self.s, f"{authority}_dxp_id"),
                ("x",),
                "CEB622",
                etree.tostring(root),
            )
        )

    def _port(self, kind: str) -> bytes:
        q = f"{{{PORT_NS}}}"
        root = etree.Element(
            f"{q}{kind}", nsmap={"port": PORT_NS}, id=str(uuid.uuid4()).upper(), version="1.0"
        )
        etree.SubElement(root, f"{q}portCode").text = "4601"
        c = etree.SubElement(root, f"{q}Consignment")
        etree.SubElement(c, f"{q}logisticsNo").text = self.logistics_no
        stamp = "arrivedAt" if kind == "Arrival" else "gateOutAt"
        etree.SubElement(c, f"{q}{stamp}").text = datetime.now(UTC).isoformat()
        sign_enveloped(root, self.keys["port"])
        return build_envelope(
            Envelope(
                uuid.uuid4().hex, self.s.port_dxp_id, ("x",), f"Port{kind}", etree.tostring(root)
            )
        )

    @rule(authority=st.sampled_from(AUTHORITIES), code=st.sampled_from(CODES))
    def receipt(self, authority: str, code: str) -> None:
        body = self._receipt(authority, code)
        self.sent.append(body)
        record_receipts(self.rt, body)

    @rule(data=st.data())
    def replay_an_earlier_receipt(self, data) -> None:
        if self.sent:
            record_receipts(self.rt, data.draw(st.sampled_from(self.sent)))

    @rule()
    def arrival(self) -> None:
        record_port_events(self.rt, self._port("Arrival"))

    @rule()
    def gate_out(self) -> None:
        record_port_events(self.rt, self._port("GateOut"))

    def _count(self, table, **where) -> int:
        stmt = select(func.count()).select_from(table)
        for column, value in where.items():
            stmt = stmt.where(table.c[column] == value)
        with self.rt.engine.connect() as conn:
            return int(conn.execute(stmt).scalar_one())

    @invariant()
    def at_most_one_release_and_one_joint_inspection(self) -> None:
        assert self._count(t.dispatches, declaration_id=self.did, kind="release") <= 1
        assert self._count(t.joint_inspections, declaration_id=self.did) <= 1

    @invariant()
    def no_release_without_every_clearance_and_the_arrival(self) -> None:
        if self._count(t.dispatches, declaration_id=self.did, kind="release") == 0:
            return
        with self.rt.engine.connect() as conn:
            decl = repo.get_declaration(conn, self.did)
            phases = [Phase(r["phase"]) for r in repo.authority_rows(conn, self.did)]
        assert decl["arrived_at"] is not None
        assert all(p in (Phase.RELEASED, Phase.CLOSED, Phase.RETURNED) for p in phases), phases

    @invariant()
    def terminal_statuses_absorb_and_events_only_grow(self) -> None:
        with self.rt.engine.connect() as conn:
            status = repo.get_declaration(conn, self.did)["status"]
            events = len(repo.events_of(conn, self.did))
        if self.terminal is not None:
            assert status == self.terminal
        elif DeclarationStatus(status) in TERMINAL_STATUSES:
            self.terminal = status
        assert events >= self.events
        self.events = events


def test_no_interleaving_breaks_inspect_once_or_release_once(world) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    Clearance.world = world
    run_state_machine_as_test(
        Clearance,
        settings=settings(
            max_examples=40,
            stateful_step_count=25,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
        ),
    )
