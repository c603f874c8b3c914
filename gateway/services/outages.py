"""Planned outages: announce, list and cancel them; hold deliveries while one is on.

Submissions during an outage are accepted as always; their dispatches to the authority wait
(``next_attempt_at`` moved to the window's end, no attempt counted) and the relay sends them
when it ends. The check runs both in the relay (in bulk) and in the delivery itself, so a
job already queued, or rung by the API, is held too.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine

from gateway.domain.errors import NotFound
from gateway.domain.outages import OutageNotice, check_window, hold_until, visible
from gateway.persistence import outages as store
from gateway.persistence import repository as repo
from gateway.persistence.ids import new_id

log = logging.getLogger(__name__)


def announce(
    engine: Engine, authority: str, starts_at: datetime, ends_at: datetime, note: str, by: str
) -> OutageNotice:
    """Record a planned outage; from now on users see it and deliveries respect it."""
    check_window(authority, starts_at, ends_at, note)
    notice = OutageNotice(new_id("out"), authority, starts_at, ends_at, note)
    with engine.begin() as conn:
        store.insert_notice(
            conn,
            id=notice.id,
            authority=authority,
            starts_at=starts_at,
            ends_at=ends_at,
            note=note,
            created_by=by[:120],
            created_at=repo.now(),
        )
    log.info("outage announced: %s %s", notice.id, notice.text())
    return notice


def cancel(engine: Engine, notice_id: str) -> int:
    """Cancel a notice; dispatches it was holding go out now. Returns how many."""
    at = repo.now()
    with engine.begin() as conn:
        row = store.get_notice(conn, notice_id)
        if row is None or not store.cancel_notice(conn, notice_id, at):
            raise NotFound(f"No open outage notice {notice_id}.")
        ends = repo.as_utc(row["ends_at"])
        assert ends is not None
        released = store.release_held(conn, row["authority"], ends, at)
    log.info("outage %s cancelled; %d dispatch(es) released", notice_id, released)
    return released


def open_notices(engine: Engine) -> list[OutageNotice]:
    """Upcoming and active notices, soonest first."""
    at = repo.now()
    with engine.connect() as conn:
        return visible(store.open_notices(conn, at), at)


def as_json(notice: OutageNotice, at: datetime) -> dict[str, Any]:
    """A notice as the API shows it."""
    return {
        "id": notice.id,
        "authority": notice.authority,
        "start": _iso(notice.starts_at),
        "end": _iso(notice.ends_at),
        "state": notice.state(at),
        "note": notice.note,
        "message": notice.text(),
    }


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def hold_for_outage(
    conn: Connection, dispatch: Any, at: datetime, notices: list[OutageNotice] | None = None
) -> datetime | None:
    """If ``dispatch``'s authority is in a planned outage at ``at``: make it wait for the end
    (once, with a timeline event) and return the end; else None (send it now). ``notices``:
    the open notices, when the caller read them already for several dispatches."""
    if notices is None:
        notices = store.open_notices(conn, at)
    until = hold_until(notices, dispatch["authority"], at)
    if until is not None and store.hold_dispatch(conn, dispatch["id"], until, at):
        _record_hold(conn, dispatch, until, at)
    return until


def hold_due(engine: Engine, at: datetime) -> int:
    """The relay's pass: every dispatch that would go to an authority during its outage waits
    for the end instead. Returns how many were newly held."""
    with engine.begin() as conn:
        notices = store.open_notices(conn, at)
        held = 0
        for authority in sorted({n.authority for n in notices if n.covers(at)}):
            until = hold_until(notices, authority, at)
            assert until is not None
            for dispatch in store.to_hold(conn, authority, until, at):
                if store.hold_dispatch(conn, dispatch["id"], until, at):
                    _record_hold(conn, dispatch, until, at)
                    held += 1
    if held:
        log.info("held %d dispatch(es) for planned outages", held)
    return held


def _record_hold(conn: Connection, dispatch: Any, until: datetime, at: datetime) -> None:
    if dispatch["declaration_id"]:
        found = repo.get_declaration(conn, dispatch["declaration_id"])
        targets = [found] if found is not None else []
    else:
        targets = repo.declarations_of_message(conn, dispatch["message_id"])
    what = {"declaration": "message"}.get(dispatch["kind"], dispatch["kind"])
    info = (
        f"{dispatch['authority']} has a planned outage until {_iso(until)}; the {what} is "
        f"held and goes out then (dispatch {dispatch['id']})"
    )
    repo.insert_events(
        conn,
        [
            dict(
                declaration_id=d["id"],
                at=at,
                kind="outage_hold",
                source=dispatch["authority"],
                status=d["status"],
                info=info,
            )
            for d in targets
        ],
    )


class NoticeBoard:
    """The open notices, read at most once per ``ttl`` seconds per process: the submit path
    consults it on every request, and notices change rarely."""

    def __init__(self, engine: Callable[[], Engine], ttl: float) -> None:
        self._engine, self._ttl = engine, ttl
        self._lock = threading.Lock()
        self._at = -1e9
        self._notices: list[OutageNotice] = []

    def current(self) -> list[OutageNotice]:
        now = time.monotonic()
        if now - self._at >= self._ttl:
            with self._lock:
                if now - self._at >= self._ttl:
                    self._notices = open_notices(self._engine())
                    self._at = now
        at = repo.now()
        return [n for n in self._notices if n.ends_at > at]
