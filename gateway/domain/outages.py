"""Planned outages of an authority: the notice users see, and when deliveries wait for it.

Pure: a notice is a window on one authority; deliveries to an authority wait while a window
covers the moment they would go out, and go out when it ends.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from gateway.domain.errors import MalformedRequest

AUTHORITIES = ("customs", "inspection", "port")
MAX_NOTE = 500
MAX_WINDOW = timedelta(days=14)


@dataclass(frozen=True)
class OutageNotice:
    """An announced planned outage of one authority, [starts_at, ends_at) in UTC."""

    id: str
    authority: str
    starts_at: datetime
    ends_at: datetime
    note: str

    def covers(self, at: datetime) -> bool:
        return self.starts_at <= at < self.ends_at

    def state(self, at: datetime) -> str:
        """upcoming, active or ended, as the user sees it at ``at``."""
        if at < self.starts_at:
            return "upcoming"
        return "active" if at < self.ends_at else "ended"

    def headline(self) -> str:
        """Which authority, when, and what happens to submissions (ASCII, fit for a header)."""
        window = f"{_iso(self.starts_at)} to {_iso(self.ends_at)}"
        return (
            f"planned outage of {self.authority} from {window}; submissions are accepted "
            "and delivered when it ends"
        )

    def text(self) -> str:
        """The headline and the operator's note."""
        return f"{self.headline()} ({self.note})" if self.note else self.headline()


def _iso(at: datetime) -> str:
    return at.isoformat(timespec="seconds").replace("+00:00", "Z")


def check_window(authority: str, starts_at: datetime, ends_at: datetime, note: str) -> None:
    """Refuse a notice no operator means: unknown authority, empty or inverted window."""
    if authority not in AUTHORITIES:
        raise MalformedRequest(f"authority must be one of {', '.join(AUTHORITIES)}.")
    if starts_at.tzinfo is None or ends_at.tzinfo is None:
        raise MalformedRequest("start and end must carry a time zone (e.g. 2026-12-01T02:00Z).")
    if ends_at <= starts_at:
        raise MalformedRequest("The outage must end after it starts.")
    if ends_at - starts_at > MAX_WINDOW:
        raise MalformedRequest("A planned outage is at most 14 days; announce another after.")
    if len(note) > MAX_NOTE:
        raise MalformedRequest(f"The note is longer than {MAX_NOTE} characters.")


def hold_until(notices: Iterable[OutageNotice], authority: str, at: datetime) -> datetime | None:
    """When a delivery to ``authority`` due at ``at`` may go out, or None if it may now.

    Back-to-back or overlapping windows chain: the delivery waits for the last of them."""
    relevant = sorted(
        (n for n in notices if n.authority == authority and n.ends_at > at),
        key=lambda n: n.starts_at,
    )
    until: datetime | None = None
    for n in relevant:
        point = until or at
        if n.starts_at <= point < n.ends_at:
            until = n.ends_at
    return until


def visible(notices: Iterable[OutageNotice], at: datetime) -> list[OutageNotice]:
    """Notices a user should see now: upcoming or active, soonest first."""
    return sorted((n for n in notices if n.ends_at > at), key=lambda n: n.starts_at)
