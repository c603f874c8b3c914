"""`python -m gateway outage announce|list|cancel`: planned outages, for operators."""

from __future__ import annotations

import getpass
import json
import re
from datetime import UTC, datetime, timedelta

import click

from gateway.domain.errors import GatewayError
from gateway.settings import load_settings

_RELATIVE = re.compile(r"^\+(\d+(?:\.\d+)?)([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_when(value: str, name: str, base: datetime | None = None) -> datetime:
    """``now``, ``+30m`` / ``+2h`` (after ``base``, else now), or ISO 8601 with a zone."""
    now = datetime.now(UTC)
    if value == "now":
        return now
    relative = _RELATIVE.match(value)
    if relative:
        amount, unit = relative.groups()
        return (base or now) + timedelta(seconds=float(amount) * _UNITS[unit])
    from gateway.api.notices import parse_time

    try:
        return parse_time(value, name)
    except GatewayError as exc:
        raise click.BadParameter(exc.detail, param_hint=f"--{name}") from None


def _engine():  # type: ignore[no-untyped-def]
    from gateway.persistence.database import get_engine

    return get_engine(load_settings().db_url)


@click.group()
def outage() -> None:
    """Planned outages of an authority: users are told, deliveries wait, the queue drains."""


@outage.command("announce")
@click.option("--authority", required=True, type=click.Choice(["customs", "inspection", "port"]))
@click.option("--start", required=True, help="ISO 8601 with a zone, `now`, or `+30m`.")
@click.option("--end", required=True, help="ISO 8601 with a zone, or `+2h` after the start.")
@click.option("--note", default="", help="What users are told (e.g. the reason).")
@click.option("--json", "as_json", is_flag=True, help="Print the notice as JSON.")
def announce_cmd(authority: str, start: str, end: str, note: str, as_json: bool) -> None:
    """Announce a planned outage of an authority."""
    from gateway.services.outages import announce

    starts = parse_when(start, "start")
    ends = parse_when(end, "end", base=starts)
    try:
        notice = announce(_engine(), authority, starts, ends, note, f"cli:{getpass.getuser()}")
    except GatewayError as exc:
        raise click.ClickException(exc.detail) from None
    if as_json:
        from gateway.services.outages import as_json as notice_json

        click.echo(json.dumps(notice_json(notice, datetime.now(UTC))))
    else:
        click.echo(f"{notice.id}  {notice.text()}")


@outage.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include ended and cancelled notices.")
def list_cmd(show_all: bool) -> None:
    """Upcoming and active notices (with --all: every notice)."""
    from gateway.persistence import outages as store
    from gateway.persistence.repository import as_utc

    now = datetime.now(UTC)
    with _engine().connect() as conn:
        rows = store.all_notices(conn, limit=1000)
    for row in reversed(rows):
        notice = store.notice_of(row)
        state = "cancelled" if row["cancelled_at"] else notice.state(now)
        if not show_all and state in ("cancelled", "ended"):
            continue
        start, end = as_utc(notice.starts_at), as_utc(notice.ends_at)
        click.echo(
            f"{notice.id}  {notice.authority:<10} {state:<9} {start:%Y-%m-%d %H:%M}Z -> "
            f"{end:%Y-%m-%d %H:%M}Z  {notice.note}"
        )


@outage.command("cancel")
@click.argument("notice_id")
def cancel_cmd(notice_id: str) -> None:
    """Cancel a notice; dispatches it was holding go out at once."""
    from gateway.services.outages import cancel

    try:
        released = cancel(_engine(), notice_id)
    except GatewayError as exc:
        raise click.ClickException(exc.detail) from None
    click.echo(f"cancelled {notice_id}; {released} held dispatch(es) released")
