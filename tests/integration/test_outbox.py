"""The outbox: what the database accepted reaches the queue even when the doorbell fails."""

from __future__ import annotations

from datetime import timedelta

from rq import Queue
from rq.serializers import JSONSerializer
from sqlalchemy import select

from gateway.bootstrap import redis_connection
from gateway.examples import fresh_ceb621
from gateway.jobs.relay import relay_once
from gateway.persistence import repository as repo
from gateway.persistence import tables as t
from gateway.services.declare import declare
from gateway.services.deliver import deliver
from gateway.services.runtime import Runtime
from gateway.settings import Settings


def _dispatch_ids(rt: Runtime) -> list[str]:
    """The customs dispatch of each message."""
    with rt.engine.connect() as conn:
        return [
            r[0]
            for r in conn.execute(
                select(t.dispatches.c.id).where(t.dispatches.c.authority == "customs")
            )
        ]


def test_a_commit_whose_doorbell_never_rang_is_enqueued_by_the_relay(
    settings: Settings, runtime: Runtime, org_id: str
):
    accepted = declare(runtime, org_id, fresh_ceb621(), "application/xml")
    (dispatch_id,) = _dispatch_ids(runtime)
    queue = Queue(
        settings.queue_name, connection=redis_connection(settings), serializer=JSONSerializer
    )
    assert queue.count == 0  # the doorbell was a no-op: as if the process died after commit

    assert relay_once(settings) == 1
    assert queue.job_ids == [f"deliver-{dispatch_id}"]
    job = queue.fetch_job(f"deliver-{dispatch_id}")
    assert job is not None and job.args == [dispatch_id]
    assert accepted.declarations[0].status == "accepted"
    assert relay_once(settings) == 0  # postponed by a lease: not enqueued again at once


def test_a_dispatch_is_claimed_by_one_attempt_at_a_time(runtime: Runtime, org_id: str):
    declare(runtime, org_id, fresh_ceb621(), "application/xml")
    (dispatch_id,) = _dispatch_ids(runtime)
    at = repo.now()
    with runtime.engine.begin() as conn:
        first = repo.claim_dispatch(conn, dispatch_id, at, timedelta(seconds=30))
        second = repo.claim_dispatch(conn, dispatch_id, at, timedelta(seconds=30))
        after_lease = repo.claim_dispatch(
            conn, dispatch_id, at + timedelta(seconds=31), timedelta(seconds=30)
        )
        stale_write = repo.finish_attempt(conn, dispatch_id, 1, state="sent")
        own_write = repo.finish_attempt(conn, dispatch_id, 2, state="sent")
    assert (first, second, after_lease) == (1, None, 2)
    assert stale_write is False and own_write is True


def test_an_unreachable_authority_means_retry_later_with_the_same_bytes(
    runtime: Runtime, org_id: str
):
    declare(runtime, org_id, fresh_ceb621(), "application/xml")
    (dispatch_id,) = _dispatch_ids(runtime)
    outcome = deliver(runtime, dispatch_id)  # nothing listens on the sandbox port
    assert outcome.result == "retry" and outcome.attempt == 1
    with runtime.engine.connect() as conn:
        row = repo.get_dispatch(conn, dispatch_id)
        decl = conn.execute(select(t.declarations)).mappings().one()
        kinds = [e["kind"] for e in repo.events_of(conn, decl["id"])]
    assert row is not None and row["state"] == "pending" and row["last_error"]
    assert kinds[:3] == ["accepted", "signed", "send_retry"]
    assert decl["status"] == "accepted"
