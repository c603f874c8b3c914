"""The rq job that delivers one dispatch. It takes an id only; the database is the record."""

from __future__ import annotations

from rq import get_current_job

from gateway.bootstrap import runtime
from gateway.logs import bound
from gateway.services.deliver import deliver
from gateway.settings import load_settings


def _request_id() -> str | None:
    """The request that rang for this job (its meta), when it was enqueued by one."""
    job = get_current_job()
    return (job.meta or {}).get("request_id") if job is not None else None


def deliver_job(dispatch_id: str) -> str:
    """Deliver ``dispatch_id``; the result string is for logs only, never business state."""
    with bound(request_id=_request_id(), dispatch_id=dispatch_id):
        return deliver(runtime(load_settings()), dispatch_id).result
