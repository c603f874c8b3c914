"""Export: a released CEB603 list gets the arrival (CEB507) and departure (CEB509) milestones
when customs accepts them; departure closes it."""

from __future__ import annotations

import re
import uuid

import pytest
from lxml import etree

from adapters.dxp import Envelope, build_envelope
from gateway.persistence import repository as repo
from gateway.provisioning import sandbox_key_paths
from gateway.services.declare import declare
from gateway.services.receipts import record_receipts
from gateway.services.runtime import Runtime
from gateway.settings import Settings
from sandbox.receipts import build_reply
from signing import load_signing_key, sign_enveloped
from tests.unit.test_corpus import CORPUS

GUID = re.compile(r"[0-9A-F]{8}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{4}-[0-9A-F]{12}")


@pytest.fixture
def routing() -> dict[str, str]:
    return {"inspection_hs_prefixes": "", "port_message_types": ""}


def _fresh(message_type: str, numbers: dict[str, str]) -> bytes:
    text = (CORPUS / message_type / "valid.xml").read_text(encoding="utf-8")
    for old, new in numbers.items():
        text = text.replace(old, new)
    return GUID.sub(lambda _m: str(uuid.uuid4()).upper(), text).encode()


def _reply(settings: Settings, reply: str, guid: str, code: str, extra: dict) -> bytes:
    root = build_reply(
        reply,
        {
            "guid": guid,
            "returnStatus": code,
            "returnTime": "20261123120000" + code.rjust(3, "0"),
            "returnInfo": "ok",
            **extra,
        },
    )
    sign_enveloped(root, load_signing_key(*sandbox_key_paths(settings, "customs")))
    return build_envelope(
        Envelope(uuid.uuid4().hex, settings.customs_dxp_id, ("x",), reply, etree.tostring(root))
    )


def test_arrival_and_departure_are_recorded_on_the_lists_and_departure_closes(
    settings: Settings, runtime: Runtime, org_id: str
):
    tag = uuid.uuid4().hex[:8].upper()
    numbers = {
        "EXL2026112300001": f"EXL{tag}01",
        "EXL2026112300002": f"EXL{tag}02",
        "INV202611230001": f"INV{tag}01",
    }
    lists = declare(runtime, org_id, _fresh("CEB603", numbers), "application/xml")
    ids = [d.id for d in lists.declarations]
    for d in lists.declarations:
        for code in ("2", "120", "800"):
            record_receipts(
                runtime,
                _reply(
                    settings,
                    "CEB604",
                    d.doc_guid,
                    code,
                    {
                        "agentCode": "4401986789",
                        "copNo": "C",
                        "preNo": "B" + "1" * 17,
                        "invtNo": "51412026E000004120",
                        "ebcCode": "4401961234",
                        "ebpCode": "4401960ZZZ",
                        "orderNo": "EXO1",
                        "statisticsFlag": "A",
                    },
                ),
            )
    with runtime.engine.connect() as conn:
        assert {repo.get_declaration(conn, i)["status"] for i in ids} == {"released"}
    extra = {
        "operatorCode": "4401980888",
        "logisticsCode": "4401980567",
        "preNo": "B" + "2" * 17,
        "copNo": "C2",
        "billNo": "999-1",
        "msgSeqNo": "1",
    }
    for message_type, reply in (("CEB507", "CEB508"), ("CEB509", "CEB510")):
        acc = declare(runtime, org_id, _fresh(message_type, numbers), "application/xml")
        for code in ("2", "120"):
            fields = {
                k: v
                for k, v in extra.items()
                if reply == "CEB508" or k not in ("operatorCode", "billNo")
            }
            record_receipts(
                runtime, _reply(settings, reply, acc.declarations[0].doc_guid, code, fields)
            )
    with runtime.engine.connect() as conn:
        (i,) = ids
        kinds = [e["kind"] for e in repo.events_of(conn, i)]
        assert kinds.count("export_arrival") == 1 and kinds.count("departed") == 1
        assert repo.get_declaration(conn, i)["status"] == "closed"
