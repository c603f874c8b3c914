"""A real sandbox on a free port and a stand-in gateway that records what the authorities push
(verifying every signature with the authority's certificate and every message against our
schema), plus builders for signed declarations, manifests and releases."""

from __future__ import annotations

import base64
import copy
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from lxml import etree
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from adapters.dxp import Envelope, build_envelope, read_envelope
from gateway.bootstrap import declarant_key_paths
from gateway.provisioning import ensure_keys, gateway_key_paths, sandbox_key_paths
from gateway.services.keyring import publish_certificate
from gateway.settings import PROJECT_ROOT, Settings, load_settings
from gateway.xml.validation import detect, schema_violations
from sandbox.app import Sandbox, create_app
from schemas.registry import CEB_NS, PORT_NS
from signing import TrustStore, load_signing_key, sign_enveloped, verify_enveloped
from signing.keys import KeyProvider

CORPUS = PROJECT_ROOT / "tests" / "data" / "messages"
DECLARANT = "DXPENT0000000001"
_Q = f"{{{CEB_NS}}}"
_P = f"{{{PORT_NS}}}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def guid() -> str:
    return str(uuid.uuid4()).upper()


@dataclass
class Pushed:
    """One message an authority pushed to the stand-in gateway, verified and validated."""

    path: str
    sender: str
    receivers: tuple[str, ...]
    msg_type: str
    root: etree._Element  # the verified element
    violations: list[str]
    raw: bytes

    def entries(self) -> list[dict[str, str]]:
        """Return entries as field dicts (CEB receipts), or consignments (port events)."""
        out = []
        for entry in self.root:
            if not isinstance(entry.tag, str) or etree.QName(entry).localname == "Signature":
                continue
            if len(entry):
                out.append({etree.QName(c).localname: (c.text or "") for c in entry})
        return out


class Receiver:
    """The stand-in gateway: /api/v1/receipts and /api/v1/port/events."""

    def __init__(self, trust: dict[str, TrustStore]) -> None:
        self.trust = trust
        self.pushed: list[Pushed] = []
        self.problems: list[str] = []
        self.status = 200  # what to answer (tests set 503 to exercise retries)
        self.hits = 0
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        body = request.get_data()
        with self._lock:
            self.hits += 1
            status = self.status
        if status != 200:
            return Response("{}", status=status)(environ, start_response)
        try:
            self._record(request.path, body)
        except Exception as exc:  # recorded and asserted on by the tests
            with self._lock:
                self.problems.append(f"{request.path}: {type(exc).__name__}: {exc}")
        return Response('{"ok": true}', mimetype="application/json")(environ, start_response)

    def _record(self, path: str, body: bytes) -> None:
        env = read_envelope(etree.fromstring(body))
        root = etree.fromstring(env.data)
        verified = verify_enveloped(root, self.trust[env.sender_id]).root
        spec = detect(verified)
        violations = [f"{v.path}: {v.message}" for v in schema_violations(verified, spec)]
        if env.msg_type != spec.type:
            violations.append(f"MsgType {env.msg_type} but the message is {spec.type}")
        item = Pushed(path, env.sender_id, env.receiver_ids, spec.type, verified, violations, body)
        with self._lock:
            self.pushed.append(item)

    def select(self, predicate: Callable[[Pushed], bool]) -> list[Pushed]:
        with self._lock:
            return [p for p in self.pushed if predicate(p)]

    def wait_for(
        self, predicate: Callable[[Pushed], bool], count: int = 1, timeout: float = 10.0
    ) -> list[Pushed]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.select(predicate)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        raise AssertionError(f"expected {count} pushed messages; got {self.select(predicate)}")

    def for_doc(self, doc_guid: str) -> list[Pushed]:
        """Receipts whose entries answer document ``doc_guid``, in arrival order."""
        return self.select(lambda p: any(e.get("guid") == doc_guid for e in p.entries()))

    def codes(self, doc_guid: str) -> list[str]:
        return [
            e["returnStatus"]
            for p in self.for_doc(doc_guid)
            for e in p.entries()
            if e.get("guid") == doc_guid
        ]

    def wait_codes(self, doc_guid: str, count: int, timeout: float = 10.0) -> list[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            codes = self.codes(doc_guid)
            if len(codes) >= count:
                return codes
            time.sleep(0.02)
        raise AssertionError(f"{doc_guid}: expected {count} receipts, got {self.codes(doc_guid)}")


class Server:
    """A WSGI app served by werkzeug (threaded) on a free port in a thread."""

    def __init__(self, app: Any, port: int) -> None:
        self.server = make_server("127.0.0.1", port, app, threaded=True)
        self.url = f"http://127.0.0.1:{port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@dataclass
class World:
    """A running sandbox and stand-in gateway, with the keys to talk to them."""

    settings: Settings
    sandbox: Sandbox
    receiver: Receiver
    base: str
    declarant: KeyProvider
    gateway_key: KeyProvider
    servers: list[Server] = field(default_factory=list)

    def http(self, timeout: float = 10.0) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=timeout)

    def post(
        self,
        authority: str,
        signed: bytes,
        msg_type: str,
        *,
        cop: str | None = None,
        sender: str = DECLARANT,
        timeout: float = 10.0,
    ) -> httpx.Response:
        body = build_envelope(
            Envelope(cop or "dsp_" + uuid.uuid4().hex, sender, ("X",), msg_type, signed)
        )
        return httpx.post(
            f"{self.base}/{authority}/dxp",
            content=body,
            headers={"Content-Type": "application/xml"},
            timeout=timeout,
        )

    def admin(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(f"{self.base}/admin/{path}", json=body, timeout=5)

    def records(self) -> dict[str, Any]:
        return httpx.get(f"{self.base}/records", timeout=5).json()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.sandbox.stop()


def fast_settings(tmp: Path, **overrides: Any) -> Settings:
    """Fast, deterministic sandbox settings in a fresh data dir."""
    values: dict[str, Any] = {
        "data_dir": str(tmp),
        "sandbox_port": free_port(),
        "port": free_port(),
        "sandbox_delays": "0.05,0.05,0.05",
        "sandbox_inspection_delays": "0.05,0.05",
        "sandbox_arrival_delay": 0.05,
        "sandbox_gate_out_delay": 0.05,
        "sandbox_inspection_rates": "AEO=0,general=0,untrusted=0",
        "sandbox_ciq_rate": 0.0,
        "sandbox_hold_rate": 0.0,
        "sandbox_match_timeout": 1.0,
    }
    values.update(overrides)
    return load_settings(env={}, **values)


def start_world(tmp: Path, **overrides: Any) -> World:
    settings = fast_settings(tmp, **overrides)
    ensure_keys(settings)
    declarant = load_signing_key(*declarant_key_paths(settings))
    publish_certificate(settings.registered_path, DECLARANT, declarant)
    trust = {
        getattr(settings, f"{a}_dxp_id"): TrustStore.from_pem_files(
            [sandbox_key_paths(settings, a)[1]]
        )
        for a in ("customs", "inspection", "port")
    }
    receiver = Receiver(trust)
    gateway_side = Server(receiver, settings.port)
    app = create_app(settings)
    sandbox_server = Server(app, settings.sandbox_port)
    return World(
        settings,
        app.extensions["sandbox"],
        receiver,
        sandbox_server.url,
        declarant,
        load_signing_key(*gateway_key_paths(settings)),
        [sandbox_server, gateway_side],
    )


# ---------------------------------------------------------------------- messages


def sign(root: etree._Element, key: KeyProvider) -> bytes:
    sign_enveloped(root, key)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def corpus(message_type: str) -> etree._Element:
    return etree.parse(str(CORPUS / message_type / "valid.xml")).getroot()


def _set(parent: etree._Element, values: dict[str, str]) -> None:
    for name, value in values.items():
        el = parent.find(f"{_Q}{name}")
        assert el is not None, name
        el.text = value


@dataclass
class Family:
    """An inventory list with its order, payment and waybill, consistent unless changed."""

    inventory: etree._Element
    order: etree._Element
    payment: etree._Element
    waybill: etree._Element

    @property
    def inventory_guid(self) -> str:
        return self.inventory.findtext(f"{_Q}Inventory/{_Q}InventoryHead/{_Q}guid") or ""

    def head(self, which: str) -> etree._Element:
        path = {
            "inventory": "Inventory/{q}InventoryHead",
            "order": "Order/{q}OrderHead",
            "payment": "Payment/{q}PaymentHead",
            "waybill": "Logistics/{q}LogisticsHead",
        }[which].format(q=_Q)
        el = getattr(self, which).find(f"{_Q}{path}")
        assert el is not None
        return el

    def change(self, which: str, **values: str) -> Family:
        _set(self.head(which), values)
        return self


def family() -> Family:
    """Fresh guids and business numbers for the corpus order/payment/waybill/inventory."""
    tag = uuid.uuid4().hex[:10].upper()
    order_no, logistics_no = f"ORD{tag}", f"LN{tag}"
    docs = {t: copy.deepcopy(corpus(t)) for t in ("CEB621", "CEB311", "CEB411", "CEB511")}
    for root in docs.values():
        root.set("guid", guid())
    fam = Family(docs["CEB621"], docs["CEB311"], docs["CEB411"], docs["CEB511"])
    fam.change(
        "inventory", guid=guid(), orderNo=order_no, logisticsNo=logistics_no, copNo=f"C{tag}"
    )
    fam.change("order", guid=guid(), orderNo=order_no)
    fam.change("payment", guid=guid(), orderNo=order_no, payTransactionId=f"PAY{tag}")
    fam.change("waybill", guid=guid(), orderNo=order_no, logisticsNo=logistics_no)
    return fam


def manifest(logistics_nos: list[str], port_code: str = "4601") -> etree._Element:
    root = etree.Element(f"{_P}Manifest", nsmap={"port": PORT_NS}, id=guid(), version="1.0")
    etree.SubElement(root, f"{_P}portCode").text = port_code
    etree.SubElement(root, f"{_P}createdAt").text = "2026-11-23T10:15:00+08:00"
    for number in logistics_nos:
        c = etree.SubElement(root, f"{_P}Consignment")
        for name, value in (
            ("logisticsNo", number),
            ("billNo", "999-12345678"),
            ("trafMode", "5"),
            ("packNo", "1"),
            ("grossWeight", "1.20"),
            ("advance", "true"),
        ):
            etree.SubElement(c, f"{_P}{name}").text = value
    return root


def release(logistics_no: str, port_code: str = "4601") -> etree._Element:
    root = etree.Element(f"{_P}Release", nsmap={"port": PORT_NS}, id=guid(), version="1.0")
    etree.SubElement(root, f"{_P}portCode").text = port_code
    c = etree.SubElement(root, f"{_P}Consignment")
    etree.SubElement(c, f"{_P}logisticsNo").text = logistics_no
    etree.SubElement(c, f"{_P}invtNo").text = "46012026I000000002"
    etree.SubElement(c, f"{_P}releasedAt").text = "2026-11-23T13:00:00Z"
    etree.SubElement(c, f"{_P}clearedBy").text = "customs"
    return root


def decode_polled(items: list[dict[str, Any]]) -> Iterator[tuple[int, Envelope]]:
    for item in items:
        yield item["seq"], read_envelope(etree.fromstring(base64.b64decode(item["envelope"])))
