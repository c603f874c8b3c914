"""Pull receipts that were never pushed: ask each authority for what came after our cursor.

Pushed receipts are the fast path; this is the fallback for the ones lost on the way. Every
pulled receipt goes through the same verification and idempotent application, so a receipt
that was both pushed and pulled changes things once.
"""

from __future__ import annotations

import base64
import binascii
import logging

import httpx
from sqlalchemy import select

from gateway.domain.errors import GatewayError
from gateway.persistence import repository as repo
from gateway.persistence import tables as t
from gateway.services.port_events import record_port_events
from gateway.services.receipts import record_receipts
from gateway.services.runtime import Runtime

log = logging.getLogger(__name__)
# The port's arrival and gate-out events are pulled like receipts: a lost gate-out would
# otherwise leave a released declaration open for good.
POLLED_AUTHORITIES = ("customs", "inspection", "port")


def query_url(endpoint: str, authority: str = "customs") -> str:
    """An authority's query endpoint next to its DXP endpoint (the port's: its events)."""
    return endpoint.rsplit("/", 1)[0] + ("/events" if authority == "port" else "/receipts")


def _receivers(rt: Runtime, authority: str) -> list[str]:
    """Whose messages to ask for: the declarants' (receipts), the gateway's (port events,
    answers to the manifests and releases the gateway itself sends)."""
    if authority == "port":
        return [rt.gateway_dxp_id]
    with rt.engine.connect() as conn:
        return [r[0] for r in conn.execute(select(t.organisations.c.dxp_id).distinct())]


def poll_authority(rt: Runtime, http: httpx.Client, url: str, authority: str, receiver: str) -> int:
    """Fetch and apply receipts for one receiver after the saved cursor; returns how many
    were new to us (applied, stale or unmatched, but not duplicates)."""
    source = f"{authority}:{receiver}"
    with rt.engine.connect() as conn:
        cursor = repo.poll_cursor(conn, source)
    resp = http.get(url, params={"receiver": receiver, "after": cursor})
    resp.raise_for_status()
    body = resp.json()
    new = 0
    for item in body.get("receipts", []):
        try:
            envelope = base64.b64decode(item["envelope"], validate=True)
            if authority == "port":
                events = record_port_events(rt, envelope)
                new += events.applied + len(events.unmatched)
            else:
                outcome = record_receipts(rt, envelope)
                new += outcome.applied + outcome.stale + len(outcome.unmatched)
        except (GatewayError, KeyError, binascii.Error) as exc:
            log.warning("polled receipt %s from %s refused: %s", item.get("seq"), authority, exc)
            continue
    next_cursor = int(body.get("next", cursor))
    if next_cursor != cursor:
        with rt.engine.begin() as conn:
            repo.save_poll_cursor(conn, source, next_cursor)
    return new


def poll_all(rt: Runtime, http: httpx.Client, endpoints: dict[str, str]) -> int:
    """One pass over every polled authority and every receiver; failures are logged."""
    total = 0
    for authority in POLLED_AUTHORITIES:
        for receiver in _receivers(rt, authority):
            try:
                total += poll_authority(
                    rt, http, query_url(endpoints[authority], authority), authority, receiver
                )
            except (httpx.HTTPError, ValueError) as exc:
                log.info("poll of %s for %s failed: %s", authority, receiver, type(exc).__name__)
    return total
