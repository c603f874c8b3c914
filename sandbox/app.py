"""The sandbox as one Flask app serving customs, inspection & quarantine and the port, each
with its own key, sender id and outbox; plus the admin endpoints that switch fault modes and
risk rates at run time, the poll endpoints, and /records for tests.

Routes: POST /{customs,inspection,port}/dxp; GET /{customs,inspection}/receipts and
GET /port/events (poll); GET/POST /admin/faults; GET/POST /admin/risk; POST /admin/reset;
GET /admin/port/received (the payloads the port was sent); GET /records; GET /healthz.
"""

from __future__ import annotations

import base64
import time
from dataclasses import dataclass
from typing import Any

from flask import Flask, Response, jsonify, request

from adapters.dxp import read_envelope
from gateway.api import problems
from gateway.provisioning import sandbox_key_paths
from gateway.settings import Settings, load_settings
from gateway.xml.parsing import ParseLimits, parse_xml
from sandbox.customs import SandboxCustoms
from sandbox.faults import AUTHORITIES, BadAdminInput, Faults
from sandbox.inspection import SandboxInspection
from sandbox.numbers import keep_sequence_in
from sandbox.outbox import MAX_POLL, Outbox
from sandbox.port import RECEIVED_KEPT, SandboxPort
from sandbox.registry import SenderRegistry
from sandbox.risk import Risk
from sandbox.scheduler import Scheduler
from schemas.registry import preload_schemas
from signing.keys import load_signing_key
from signing.policy import policy_by_name


def port_events_url(settings: Settings) -> str:
    """Where the port POSTs arrival and gate-out: the receipts URL's sibling."""
    url = settings.receipt_url
    suffix = "/receipts"
    return (url[: -len(suffix)] if url.endswith(suffix) else url.rstrip("/")) + "/port/events"


def _delays(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


@dataclass
class Sandbox:
    """Everything the sandbox runs: the three authorities and what they share."""

    settings: Settings
    faults: Faults
    risk: Risk
    scheduler: Scheduler
    customs: SandboxCustoms
    inspection: SandboxInspection
    port: SandboxPort
    outboxes: dict[str, Outbox]

    def stop(self) -> None:
        """Stop the background threads (tests; the process otherwise just exits)."""
        self.customs.stop()
        self.inspection.stop()
        self.scheduler.stop()
        for outbox in self.outboxes.values():
            outbox.stop()

    def records(self) -> dict[str, Any]:
        return {
            "customs": self.customs.snapshot(),
            "inspection": self.inspection.snapshot(),
            "port": self.port.snapshot(),
        }


def build_sandbox(settings: Settings) -> Sandbox:
    """Wire the authorities from settings (keys must exist: gateway.provisioning.ensure_keys)."""
    keep_sequence_in(settings.path("sandbox/sequence"))
    faults, risk, scheduler = Faults(), Risk(settings), Scheduler()
    registry = SenderRegistry(settings.registered_path)
    limits = ParseLimits(max_bytes=settings.max_body_bytes, max_depth=settings.max_xml_depth)
    policy = policy_by_name(settings.receipt_policy)
    targets = {
        "customs": (settings.receipt_url, settings.customs_dxp_id),
        "inspection": (settings.receipt_url, settings.inspection_dxp_id),
        "port": (port_events_url(settings), settings.port_dxp_id),
    }
    outboxes = {
        name: Outbox(
            name,
            url,
            sender_id,
            load_signing_key(*sandbox_key_paths(settings, name)),
            policy,
            faults,
            timeout=settings.http_read_timeout,
        )
        for name, (url, sender_id) in targets.items()
    }
    customs = SandboxCustoms(
        registry, outboxes["customs"], risk, scheduler, _delays(settings.sandbox_delays), limits
    )
    inspection = SandboxInspection(
        registry,
        outboxes["inspection"],
        risk,
        _delays(settings.sandbox_inspection_delays),
        limits,
    )
    port = SandboxPort(
        registry,
        outboxes["port"],
        settings.sandbox_arrival_delay,
        settings.sandbox_gate_out_delay,
        limits,
    )
    return Sandbox(settings, faults, risk, scheduler, customs, inspection, port, outboxes)


def _error(status: int, message: str, **extra: Any) -> tuple[Response, int]:
    return jsonify({"error": message, **extra}), status


def create_app(settings: Settings | None = None) -> Flask:
    """The sandbox authorities' HTTP service; ``app.extensions["sandbox"]`` is the Sandbox."""
    settings = settings or load_settings()
    preload_schemas()  # before its threads serve (libxml2 compiles one at a time)
    sandbox = build_sandbox(settings)
    app = Flask("sandbox")
    app.extensions["sandbox"] = sandbox
    problems.init_app(app)
    limits = sandbox.customs.limits

    def submission(authority: str) -> Any:
        """The fault modes, then the envelope, then the authority."""
        intake = sandbox.faults.intake(authority)
        if intake.action == "outage":
            assert intake.outage_end is not None
            resp, status = _error(
                503, f"planned outage until {intake.outage_end.isoformat(timespec='seconds')}"
            )
            resp.headers["Retry-After"] = str(intake.retry_after)
            return resp, status
        if intake.sleep:
            time.sleep(intake.sleep)
        if intake.action == "error":
            return _error(500, f"{authority}: internal error (injected)")
        if intake.action == "timeout":
            return _error(504, f"{authority}: timed out (injected); the message was not taken")
        env = read_envelope(parse_xml(request.get_data(cache=False), limits))
        if authority == "port":
            answer = sandbox.port.receive(env)
            if intake.ack_lost and answer.applied:
                return _error(500, "port: applied, but the answer was lost (injected)")
            return jsonify(answer.body), answer.status
        target = sandbox.customs if authority == "customs" else sandbox.inspection
        status = target.receive(env)
        if intake.ack_lost and status == "accepted":
            return _error(500, f"{authority}: applied, but the answer was lost (injected)")
        return jsonify({"status": status, "copMsgId": env.cop_msg_id})

    for name in AUTHORITIES:
        app.add_url_rule(
            f"/{name}/dxp",
            f"{name}_dxp",
            lambda name=name: submission(name),
            methods=["POST"],
        )

    def poll(authority: str) -> Any:
        receiver = request.args.get("receiver", "").strip()
        if not receiver:
            return _error(400, "receiver (a DXP id) is required")
        try:
            after = int(request.args.get("after", "0") or 0)
        except ValueError:
            return _error(400, "after must be an integer sequence number")
        rows = sandbox.outboxes[authority].after(receiver, after, MAX_POLL)
        return jsonify(
            {
                "receipts": [
                    {"seq": seq, "envelope": base64.b64encode(body).decode("ascii")}
                    for seq, body in rows
                ],
                "next": rows[-1][0] if rows else after,
            }
        )

    app.add_url_rule("/customs/receipts", "customs_poll", lambda: poll("customs"))
    app.add_url_rule("/inspection/receipts", "inspection_poll", lambda: poll("inspection"))
    app.add_url_rule("/port/events", "port_poll", lambda: poll("port"))

    def admin_body() -> Any:
        body = request.get_json(silent=True)
        if body is None:
            raise BadAdminInput("expected a JSON object body")
        return body

    @app.errorhandler(BadAdminInput)
    def bad_admin(exc: BadAdminInput) -> Any:
        return _error(400, str(exc))

    @app.route("/admin/faults", methods=["GET", "POST"])
    def admin_faults() -> Any:
        if request.method == "POST":
            sandbox.faults.update(admin_body())
        return jsonify(sandbox.faults.snapshot())

    @app.route("/admin/risk", methods=["GET", "POST"])
    def admin_risk() -> Any:
        if request.method == "POST":
            sandbox.risk.update(admin_body())
        return jsonify(sandbox.risk.snapshot())

    @app.post("/admin/reset")
    def admin_reset() -> Any:
        sandbox.faults.reset()
        sandbox.risk.reset()
        return jsonify({"faults": sandbox.faults.snapshot(), "risk": sandbox.risk.snapshot()})

    @app.get("/admin/port/received")
    def admin_port_received() -> Any:
        """The payloads the port was sent (base64, oldest first, the last RECEIVED_KEPT):
        the leak scan checks no buyer's ID number or phone reaches the port."""
        payloads = sandbox.port.received_payloads()
        return jsonify(
            {
                "payloads": [base64.b64encode(p).decode("ascii") for p in payloads],
                "count": len(payloads),
                "kept": RECEIVED_KEPT,
            }
        )

    @app.get("/records")
    def records() -> Any:
        return jsonify(sandbox.records())

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify({"status": "ok", "authorities": list(AUTHORITIES)})

    return app
