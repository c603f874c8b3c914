"""On PostgreSQL an event id can be taken by a transaction that has not committed yet: the
feed and the webhooks wait for it instead of stepping over it, and skip it once it is
clearly rolled back. (SQLite commits ids in order; this is the production database.)"""

from __future__ import annotations

import time

from gateway.examples import fresh_ceb621
from gateway.jobs.webhooks import webhook_config
from gateway.persistence import repository as repo
from gateway.services import webhooks
from gateway.services.declare import declare
from gateway.services.events_feed import read_feed
from gateway.services.webhook_delivery import fan_out


def _event(did: str, status: str) -> dict:  # type: ignore[type-arg]
    return dict(
        declaration_id=did, at=repo.now(), kind="test", source="test", status=status, info=None
    )


def test_the_feed_and_the_webhooks_never_step_over_an_event_still_being_committed(pg):
    s, rt, org_id = pg
    hook = webhooks.register(
        rt.engine, org_id, {"url": "http://127.0.0.1:9/h", "events": ["declaration.status_changed"]}
    )
    did = declare(rt, org_id, fresh_ceb621(), "application/xml").declarations[0].id
    cfg = webhook_config(s)

    slow = rt.engine.connect()
    slow_tx = slow.begin()
    repo.insert_events(slow, [_event(did, "under_review")])  # takes an id, not committed
    with rt.engine.begin() as conn:
        repo.insert_events(conn, [_event(did, "released")])  # a later id, committed

    page = read_feed(rt.engine, org_id, 0, 100, s.events_settle_seconds)
    assert [e["data"]["status"] for e in page.events] == ["accepted"]
    assert len(fan_out(rt.engine, cfg)) == 1

    slow_tx.commit()
    slow.close()
    later = read_feed(rt.engine, org_id, int(page.next.removeprefix("evt_")), 100, 2.0)
    assert [e["data"]["status"] for e in later.events] == ["under_review", "released"]
    assert len(fan_out(rt.engine, cfg)) == 2

    with rt.engine.connect() as conn:  # a rolled-back transaction leaves a gap for good
        tx = conn.begin()
        repo.insert_events(conn, [_event(did, "held")])
        tx.rollback()
    with rt.engine.begin() as conn:
        repo.insert_events(conn, [_event(did, "closed")])
    after = int(later.next.removeprefix("evt_"))
    assert read_feed(rt.engine, org_id, after, 100, 2.0).events == []  # young gap: wait
    time.sleep(2.2)
    (closed,) = read_feed(rt.engine, org_id, after, 100, 2.0).events
    assert closed["data"]["status"] == "closed" and closed["data"]["previous_status"] == "released"
    assert len(fan_out(rt.engine, cfg)) == 1
    assert webhooks.get_webhook(rt.engine, org_id, hook.webhook["id"])["cursor"] > after
