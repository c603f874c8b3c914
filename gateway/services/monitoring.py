"""Import/export dynamic monitoring: volumes and clearance times per day (China time)."""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, timezone

from gateway.domain.access import Viewer
from gateway.persistence import lookups
from gateway.persistence import repository as repo
from gateway.services.runtime import Runtime

CHINA = timezone(timedelta(hours=8), "CST")  # no daylight saving: a fixed offset is exact
EXPORT_TYPES = frozenset(
    {"CEB303", "CEB403", "CEB505", "CEB507", "CEB509", "CEB603", "CEB605", "CEB701"}
)
LIST_TYPES = frozenset({"CEB621", "CEB603"})


@dataclass(frozen=True)
class Day:
    """One day's declarations, and how long its released inventory lists took."""

    day: date
    imports: int
    exports: int
    released: int
    rejected: int
    median_clearance_s: float | None  # accepted -> released, inventory lists only

    @property
    def total(self) -> int:
        return self.imports + self.exports


def china_today() -> date:
    return datetime.now(CHINA).date()


def daily(
    rt: Runtime, org_id: Viewer | str, days: int = 14, today: date | None = None
) -> list[Day]:
    """The last ``days`` days up to ``today`` (China time), oldest first, empty days too."""
    last = today or china_today()
    first = last - timedelta(days=days - 1)
    since = datetime.combine(first, time(), CHINA).astimezone(UTC)
    until = datetime.combine(last + timedelta(days=1), time(), CHINA).astimezone(UTC)
    with rt.engine.connect() as conn:
        rows = lookups.activity(conn, org_id, since, until)
    buckets: dict[date, list[object]] = {first + timedelta(days=i): [] for i in range(days)}
    for r in rows:
        created = repo.as_utc(r["created_at"])
        if created is not None:
            buckets.setdefault(created.astimezone(CHINA).date(), []).append(r)
    out = []
    for day, items in sorted(buckets.items()):
        durations = []
        for r in items:
            released = repo.as_utc(r["released_at"])  # type: ignore[index]
            created = repo.as_utc(r["created_at"])  # type: ignore[index]
            if r["type"] in LIST_TYPES and released and created:  # type: ignore[index]
                durations.append((released - created).total_seconds())
        exports = sum(1 for r in items if r["type"] in EXPORT_TYPES)  # type: ignore[index]
        out.append(
            Day(
                day,
                len(items) - exports,
                exports,
                sum(1 for r in items if r["released_at"] is not None),  # type: ignore[index]
                sum(1 for r in items if r["status"] == "rejected"),  # type: ignore[index]
                statistics.median(durations) if durations else None,
            )
        )
    return out
