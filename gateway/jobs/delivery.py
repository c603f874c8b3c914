"""The rq job that delivers one dispatch. It takes an id only; the database is the record."""

from __future__ import annotations

import logging

from gateway.bootstrap import runtime
from gateway.services.deliver import deliver
from gateway.settings import load_settings

log = logging.getLogger(__name__)


def deliver_job(dispatch_id: str) -> str:
    """Deliver ``dispatch_id``; the result string is for logs only, never business state."""
    outcome = deliver(runtime(load_settings()), dispatch_id)
    log.info("dispatch %s: %s (attempt %s)", dispatch_id, outcome.result, outcome.attempt)
    return outcome.result
