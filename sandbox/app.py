"""The sandbox as a Flask app: POST /customs/dxp, GET /records, GET /healthz."""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

from adapters.dxp import read_envelope
from gateway.api import problems
from gateway.provisioning import sandbox_key_paths
from gateway.settings import Settings, load_settings
from gateway.xml.parsing import ParseLimits, parse_xml
from sandbox.customs import SandboxCustoms
from sandbox.receipts import ReceiptSender
from sandbox.registry import SenderRegistry
from signing.keys import load_signing_key
from signing.policy import policy_by_name


def build_customs(settings: Settings) -> SandboxCustoms:
    """Customs with its own key, trusting the declarant certificates it has registered."""
    key_path, cert_path = sandbox_key_paths(settings, "customs")
    sender = ReceiptSender(
        settings.receipt_url,
        settings.customs_dxp_id,
        load_signing_key(key_path, cert_path),
        policy_by_name(settings.receipt_policy),
    )
    return SandboxCustoms(
        SenderRegistry(settings.registered_path),
        sender,
        settings.sandbox_delay_list,
        ParseLimits(max_bytes=settings.max_body_bytes),
    )


def create_app(settings: Settings | None = None) -> Flask:
    """The sandbox authorities' HTTP service."""
    settings = settings or load_settings()
    app = Flask("sandbox")
    customs = build_customs(settings)
    problems.init_app(app)

    @app.post("/customs/dxp")
    def customs_dxp() -> Response:
        env = read_envelope(parse_xml(request.get_data(cache=False), customs.limits))
        return jsonify({"status": customs.receive(env), "copMsgId": env.cop_msg_id})

    @app.get("/records")
    def records() -> Response:
        r = customs.records
        with r.lock:
            return jsonify(
                {
                    "customs": {
                        "messages": len(r.messages),
                        "duplicates": r.duplicates,
                        "documents": dict(r.documents),
                        "receipts_pending": customs.sender.pending(),
                        "receipts_delivered": customs.sender.delivered,
                    }
                }
            )

    @app.get("/healthz")
    def healthz() -> Response:
        return jsonify({"status": "ok", "authorities": ["customs"]})

    return app
