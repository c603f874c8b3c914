"""The events feed: declaration status changes a caller sees, in order, resumable by cursor.

The webhooks send exactly these event objects, so a client may push, pull, or both, and
deduplicate on ``id``. Ids come from the append-only events log and never change.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from gateway.domain.errors import MalformedRequest, Violation
from gateway.domain.webhooks import STATUS_CHANGED
from gateway.persistence import event_log
from gateway.persistence import repository as repo

EVENT_PREFIX = "evt_"
MAX_LIMIT = 500


def event_id(log_id: int) -> str:
    """The public id of an events-log row: also the cursor to resume after it."""
    return f"{EVENT_PREFIX}{log_id}"


def parse_cursor(value: str | None) -> int:
    """``evt_<n>`` (or ``<n>``) to the log id; absent means from the beginning."""
    if not value:
        return 0
    digits = value.removeprefix(EVENT_PREFIX)
    if not digits.isdigit() or len(digits) > 18:
        raise MalformedRequest(
            f"after={value[:40]!r} is not an event id.",
            violations=[Violation("?after", "query.after", "an event id like evt_42 (or 42)")],
        )
    return int(digits)


def _iso(value: Any) -> str | None:
    value = repo.as_utc(value)
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def event_body(row: Any) -> dict[str, Any]:
    """One status change as the feed and the webhooks show it (no personal data)."""
    return {
        "id": event_id(row["id"]),
        "type": STATUS_CHANGED,
        "created_at": _iso(row["at"]),
        "data": {
            "declaration_id": row["declaration_id"],
            "declaration_type": row["declaration_type"],
            "order_no": row["order_no"],
            "logistics_no": row["logistics_no"],
            "status": row["status"],
            "previous_status": row["previous_status"],
            "source": row["source"],
            "kind": row["kind"],
            "code": row["code"],
            "info": row["info"],
            "links": {"declaration": f"/api/v1/declarations/{row['declaration_id']}"},
        },
    }


def event_bytes(row: Any) -> bytes:
    """The exact JSON body a webhook delivery carries (stored once, sent on every attempt)."""
    return json.dumps(event_body(row), ensure_ascii=False, separators=(",", ":")).encode()


@dataclass(frozen=True)
class FeedPage:
    events: list[dict[str, Any]]
    next: str  # pass as ?after= to continue; unchanged when nothing new
    has_more: bool


def read_feed(engine: Engine, org_id: str, after: int, limit: int, settle: float) -> FeedPage:
    """Up to ``limit`` status changes after the cursor that ``org_id`` sees."""
    limit = max(1, min(MAX_LIMIT, limit))
    with engine.connect() as conn:
        upto = event_log.horizon(conn, repo.now(), settle)
        rows = event_log.status_changes(conn, org_id, after=after, upto=upto, limit=limit + 1)
    page = rows[:limit]
    if len(rows) > limit:
        return FeedPage([event_body(r) for r in page], event_id(page[-1]["id"]), True)
    # Nothing more visible up to the horizon: the cursor may skip to it, so a client that
    # polls an idle feed does not rescan other organisations' events every time.
    return FeedPage([event_body(r) for r in page], event_id(max(after, upto)), False)
