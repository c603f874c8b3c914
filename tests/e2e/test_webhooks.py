"""Over the running stack: a broker registers a webhook, submits a CEB621 and is told of
every status change up to release and gate-out, signed, once each, through a failing start."""

from __future__ import annotations

import time

from gateway.domain.webhooks import verify
from gateway.examples import fresh_ceb621
from tests.e2e.stack import Stack, wait_for_status
from tests.webhook_receiver import Receiver


def test_a_submitted_list_is_followed_by_signed_webhooks_up_to_release_and_in_the_feed(
    stack: Stack,
):
    receiver = Receiver()
    receiver.fail(1)  # the broker's endpoint is down for the first try
    try:
        with stack.client() as client:
            hook = client.post(
                "/api/v1/webhooks",
                json={"url": receiver.url, "events": ["declaration.status_changed"]},
            )
            assert hook.status_code == 201, hook.text
            hook_id, secret = hook.json()["id"], hook.json()["secret"]
            accepted = client.post(
                "/api/v1/declarations",
                content=fresh_ceb621(),
                headers={"Content-Type": "application/xml"},
            ).json()
            did = accepted["id"]
            wait_for_status(client, did, {"closed"})

            def ours(r: Receiver) -> list[str]:
                return [
                    q.json["data"]["status"]
                    for q in r.accepted()
                    if q.json["data"]["declaration_id"] == did
                ]

            receiver.wait_for(lambda r: {"accepted", "closed"} <= set(ours(r)))
            got = [q for q in receiver.accepted() if q.json["data"]["declaration_id"] == did]
            # A retried delivery may arrive after later ones: event ids give the order back.
            got.sort(key=lambda q: int(q.json["id"].removeprefix("evt_")))
            statuses = [q.json["data"]["status"] for q in got]
            assert statuses[0] == "accepted" and statuses[-2:] == ["released", "closed"]
            assert [q.json["data"]["previous_status"] for q in got] == [None, *statuses[:-1]]
            ids = [q.json["id"] for q in receiver.accepted()]
            assert len(ids) == len(set(ids))  # one successful delivery per event
            for q in got:
                verify(secret, q.headers["Webhook-Signature"], q.body, now=int(time.time()))

            deliveries = client.get(f"/api/v1/webhooks/{hook_id}/deliveries?limit=200").json()
            # The receiver refused the first request it got (whichever delivery went first:
            # one fan-out creates several at the same instant): that one was retried.
            tries = sorted([a["http_status"] for a in d["attempts"]] for d in deliveries["items"])
            assert tries.count([500, 200]) == 1 and tries.count([200]) == len(tries) - 1, tries
            assert all(d["state"] == "delivered" for d in deliveries["items"])

            feed, after = [], ""
            while True:
                page = client.get(f"/api/v1/events?after={after}&limit=50").json()
                feed += page["events"]
                after = page["next"]
                if not page["has_more"]:
                    break
            assert [e for e in feed if e["data"]["declaration_id"] == did] == [q.json for q in got]
            # Leave the shared stack as we found it: no webhook retrying into a closed port.
            assert client.delete(f"/api/v1/webhooks/{hook_id}").status_code == 204
    finally:
        receiver.close()
