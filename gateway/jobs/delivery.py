"""The rq job that delivers one dispatch. It takes an id only; the database is the record."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rq import get_current_job
from sqlalchemy.exc import SQLAlchemyError

from gateway.bootstrap import runtime
from gateway.logs import bound
from gateway.persistence import repository as repo
from gateway.services.deliver import DeliveryOutcome, deliver, deliver_many
from gateway.services.runtime import Runtime
from gateway.settings import Settings, load_settings

log = logging.getLogger(__name__)
NO_SUCH_ID = "dsp_warm_up_not_a_dispatch"


def deliver_job(*dispatch_ids: str) -> str:
    """Deliver each of ``dispatch_ids`` in turn (one job carries a commit's dispatches, or a
    batch of the relay's); the result string is for logs only, never business state. Each
    dispatch is claimed on its own, so one that another attempt holds is skipped."""
    with bound(request_id=_request_id()):
        settings = load_settings()
        outcomes = deliver_all(runtime(settings), dispatch_ids, settings.delivery_concurrency)
        return " ".join(o.result for o in outcomes)


def _request_id() -> str | None:
    """The request that rang for this job (its meta), when it was enqueued by one."""
    job = get_current_job()
    return (job.meta or {}).get("request_id") if job is not None else None


def deliver_all(
    rt: Runtime, dispatch_ids: Sequence[str], concurrency: int = 1
) -> list[DeliveryOutcome]:
    """Deliver the dispatches, up to ``concurrency`` at once (``deliver_many``: claimed
    together, sent in parallel, recorded together; each logs its outcome)."""
    return deliver_many(rt, dispatch_ids, concurrency)


def warm_worker(settings: Settings) -> Runtime:
    """Make the rq worker parent warm before it forks: every work horse inherits this module
    and what it imports (else each horse imports them again, per job) and the engine's
    compiled-statement cache for the delivery queries (else each horse compiles them again).

    Read-only statements on an id that does not exist, in a transaction that is rolled back;
    then the parent's connections are closed, so no horse inherits an open one."""
    rt = runtime(settings)
    try:
        _compile_delivery_statements(rt)
    except SQLAlchemyError as exc:  # the database may be down: the horses compile then
        log.warning("worker warm-up skipped the database: %s", type(exc).__name__)
    rt.engine.dispose()
    return rt


def _compile_delivery_statements(rt: Runtime) -> None:
    at = repo.now()
    with rt.engine.connect() as conn:
        repo.get_dispatch(conn, NO_SUCH_ID)
        repo.get_message(conn, NO_SUCH_ID)
        repo.get_declaration(conn, NO_SUCH_ID)
        repo.authority_rows(conn, NO_SUCH_ID)
        repo.dispatch_states(conn, NO_SUCH_ID)
        repo.declarations_of_message(conn, NO_SUCH_ID)
        repo.finish_attempt(conn, NO_SUCH_ID, 0, state="sent", sent_at=at, lease_until=None)
        conn.rollback()
    deliver(rt, NO_SUCH_ID)  # the claim (an UPDATE that matches nothing): "skipped"
