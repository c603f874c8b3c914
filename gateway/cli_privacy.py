"""CLI groups for the audit trail (`audit verify`, `audit list`) and the data keys
(`data-keys status`, `rotate`, `reencrypt`); registered on the main CLI in gateway/cli.py."""

from __future__ import annotations

import getpass
import json
import sys
from typing import TYPE_CHECKING

import click

from gateway.domain.audit import Actor
from gateway.settings import Settings, load_settings

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from gateway.persistence.data_keys import DataKeyRing


def operator() -> Actor:
    """The operator at this terminal, as the audit trail names them."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return Actor("operator", f"cli:{user}")


def _ring(settings: Settings) -> DataKeyRing:
    """The configured data keys, or a clear error instead of a traceback."""
    from gateway.bootstrap import data_key_ring
    from gateway.persistence.data_keys import DataKeyError

    try:
        return data_key_ring(settings)
    except DataKeyError as exc:
        raise click.ClickException(f"data keys: {exc}") from None


def _engine(settings: Settings) -> Engine:
    """The database, with the data keys bound (reads and writes seal and open through them)."""
    from gateway.persistence.data_keys import bind
    from gateway.persistence.database import get_engine

    engine = get_engine(settings.db_url)
    bind(engine, _ring(settings))
    return engine


@click.group()
def audit() -> None:
    """The audit trail: who did what (append-only, hash-chained)."""


@audit.command("verify")
def audit_verify() -> None:
    """Check every link of the chain; exit 1 naming the first bad entry."""
    from gateway.services.audit import verify

    result = verify(_engine(load_settings()))
    if result.ok:
        click.echo(
            f"audit chain OK: {result.entries} entries, head seq {result.head_seq}, "
            f"head hash {result.head_hash or '-'}"
        )
        return
    b = result.first_break
    assert b is not None
    click.echo(
        f"audit chain BROKEN at index {b.index} (seq {b.seq if b.seq is not None else '-'}): "
        f"{b.reason}; {result.entries} entries read, head seq {result.head_seq}",
        err=True,
    )
    sys.exit(1)


@audit.command("list")
@click.option("--after", default=0, show_default=True, help="Only entries after this seq.")
@click.option("--limit", default=50, show_default=True)
@click.option("--action", default=None, help="Only actions starting with this.")
@click.option("--object", "object_id", default=None, help="Only entries naming this id.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def audit_list(
    after: int, limit: int, action: str | None, object_id: str | None, as_json: bool
) -> None:
    """Entries oldest first: seq, time, actor, action, objects."""
    from gateway.persistence.audit_log import list_entries

    with _engine(load_settings()).connect() as conn:
        rows = list_entries(conn, after=after, limit=limit, action=action, object_id=object_id)
    for s in rows:
        e = s.entry
        if as_json:
            click.echo(
                json.dumps(
                    {
                        "seq": e.seq,
                        "at": e.at,
                        "actor": e.actor.as_dict(),
                        "action": e.action,
                        "objects": list(e.objects),
                        "details": dict(e.details),
                        "hash": s.hash,
                    },
                    ensure_ascii=False,
                )
            )
        else:
            who = "/".join(x for x in (e.actor.kind, e.actor.id, e.actor.key_id) if x)
            click.echo(f"{e.seq:>6}  {e.at}  {who:<40}  {e.action:<28}  {' '.join(e.objects)}")


@click.group("data-keys")
def data_keys() -> None:
    """The keys personal data is sealed with at rest (AES-256-GCM)."""


@data_keys.command("status")
def data_keys_status() -> None:
    """The configured key ids (first seals) and what each stored blob is sealed under."""
    from gateway.services.data_keys import key_usage

    s = load_settings()
    ring = _ring(s)
    source = "GATEWAY_DATA_KEYS" if s.data_keys.strip() else str(s.data_keys_file)
    click.echo(f"keys ({source}): " + ", ".join(k for k, _ in ring.keys) + "  (first seals)")
    for column, counts in key_usage(_engine(s)).items():
        shown = ", ".join(f"{k}: {n}" for k, n in sorted(counts.items())) or "empty"
        click.echo(f"  {column:<20} {shown}")


@data_keys.command("rotate")
def data_keys_rotate() -> None:
    """Make a new first (sealing) key; the old ones keep opening what they sealed. Restart
    the gateway, then run `data-keys reencrypt`."""
    from gateway.persistence.data_keys import new_key_line, prepend_key
    from gateway.services.audit import record_now

    s = load_settings()
    engine = _engine(s)
    if s.data_keys.strip():
        line = new_key_line()
        click.echo("GATEWAY_DATA_KEYS is set: put this new key first in it, keep the old ones:")
        click.echo(f"GATEWAY_DATA_KEYS={line},{s.data_keys.strip()}")
        kid = line.partition(":")[0]
        record_now(engine, operator(), "data_keys.key_generated", [kid], {"kept_in": "env"})
        return
    kid = prepend_key(s.data_keys_file)
    record_now(engine, operator(), "data_keys.rotated", [kid], {"kept_in": "file"})
    click.echo(f"new sealing key {kid} in {s.data_keys_file}; restart the gateway, then reencrypt")


@data_keys.command("reencrypt")
@click.option(
    "--scrub/--no-scrub",
    default=True,
    show_default=True,
    help="On SQLite, VACUUM afterwards so no old plaintext page survives in the file.",
)
def data_keys_reencrypt(scrub: bool) -> None:
    """Seal every stored blob not under the first key (plaintext rows included) with it."""
    from gateway.services.data_keys import reencrypt, scrub_sqlite

    s = load_settings()
    engine = _engine(s)
    from gateway.persistence.data_keys import DataKeyError

    try:
        done = reencrypt(engine, _ring(s), operator())
    except DataKeyError as exc:  # a blob under a key no longer configured
        raise click.ClickException(f"data keys: {exc}") from None
    for column in ("messages.raw_xml", "messages.signed_xml", "receipts.raw_xml"):
        click.echo(f"  {column:<20} resealed {done.get(column, 0)}")
    if scrub and scrub_sqlite(engine):
        click.echo("  sqlite file vacuumed")
