"""Query parameters that narrow a list of declarations, read once for the API and the
dashboard alike; every bad value is a 422 problem that names the parameter."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from gateway.domain.errors import InvalidQuery, Violation
from gateway.domain.statuses import DeclarationStatus
from gateway.persistence.repository import DeclarationFilter
from gateway.services.monitoring import CHINA

STATUSES = tuple(s.value for s in DeclarationStatus)
_TYPE = re.compile(r"CEB\d{3}")
_CODE = re.compile(r"-?\d{1,4}")
_ORG_CODE = re.compile(r"[0-9A-Za-z]{1,40}")
_CURSOR = re.compile(r"dcl_[0-9a-f]{24}")
MAX_Q = 60
MAX_LIMIT = 200


@dataclass(frozen=True)
class ListQuery:
    """A filter, a page size and where the page starts."""

    where: DeclarationFilter
    limit: int
    cursor: str | None


def _bad(param: str, code: str, reason: str) -> Violation:
    return Violation(f"?{param}", f"query.{code}", reason)


def _moment(param: str, raw: str, end: bool) -> tuple[datetime | None, Violation | None]:
    """A date (a China-time day; ``until`` includes it) or an ISO 8601 time (UTC if bare)."""
    try:
        if len(raw) == 10:
            day = date.fromisoformat(raw)
            start = datetime.combine(day + timedelta(days=1 if end else 0), time(), CHINA)
            return start.astimezone(UTC), None
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).astimezone(UTC), None
    except ValueError:
        return None, _bad(param, param, "a date YYYY-MM-DD or an ISO 8601 time")


def _statuses(raw: str, errors: list[Violation]) -> tuple[str, ...]:
    values = tuple(s.strip() for s in raw.split(",") if s.strip())
    if any(v not in STATUSES for v in values):
        errors.append(
            _bad("status", "status", "one or more (comma-separated) of " + ", ".join(STATUSES))
        )
    return values


def list_query(args: Mapping[str, str]) -> ListQuery:
    """Read status, type, authority_status, since, until, code, q, limit and cursor."""
    errors: list[Violation] = []
    get = lambda name: (args.get(name) or "").strip()  # noqa: E731
    status = _statuses(get("status"), errors) if get("status") else ()
    message_type = get("type") or None
    if message_type and not _TYPE.fullmatch(message_type):
        errors.append(_bad("type", "type", "a message type like CEB621"))
    authority_status = get("authority_status") or None
    if authority_status and not _CODE.fullmatch(authority_status):
        errors.append(
            _bad("authority_status", "authority_status", "a receipt code like 100, 120 or 800")
        )
    moments: dict[str, datetime | None] = {}
    for param in ("since", "until"):
        moments[param] = None
        if get(param):
            moments[param], problem = _moment(param, get(param), param == "until")
            errors += [problem] if problem else []
    since, until = moments["since"], moments["until"]
    if since and until and since >= until:
        errors.append(_bad("until", "range", "until must be after since"))
    code = get("code") or None
    if code and not _ORG_CODE.fullmatch(code):
        errors.append(_bad("code", "code", "a registered code: letters and digits only"))
    q = get("q") or None
    if q and len(q) > MAX_Q:
        errors.append(_bad("q", "q", f"at most {MAX_Q} characters"))
    limit = 50
    if get("limit"):
        try:
            limit = int(get("limit"))
            if not 1 <= limit <= MAX_LIMIT:
                raise ValueError
        except ValueError:
            errors.append(_bad("limit", "limit", f"a whole number from 1 to {MAX_LIMIT}"))
    cursor = get("cursor") or None
    if cursor and not _CURSOR.fullmatch(cursor):
        errors.append(_bad("cursor", "cursor", "the next_cursor of an earlier page"))
    if errors:
        raise InvalidQuery(
            f"{len(errors)} query parameter(s) have values they cannot have.", violations=errors
        )
    where = DeclarationFilter(status, message_type, authority_status, since, until, code, q)
    return ListQuery(where, limit, cursor)
