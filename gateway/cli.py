"""The command line: `python -m gateway COMMAND` (also `flask --app wsgi gateway COMMAND`)."""

from __future__ import annotations

import json
import logging
import signal
import sys
import time
from pathlib import Path

import click
import httpx

from gateway.settings import load_settings


def _exit_quietly_on_signals() -> None:
    """Long-running children stop without a traceback on Ctrl-C or SIGTERM."""

    def stop(signum: int, _frame: object) -> None:
        # Once: the supervisor's own SIGTERM may follow the process group's, and a second
        # SystemExit raised inside interpreter shutdown would print a traceback.
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, signal.SIG_IGN)
        raise SystemExit(0)

    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, stop)


@click.group()
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Single-window clearance gateway."""
    from gateway.logs import configure_logging

    settings = load_settings()
    # JSON lines (or plain) for every process; the process field names the command.
    configure_logging(settings.log_format, settings.log_level, ctx.invoked_subcommand or "cli")
    from gateway.log_redaction import install_log_redaction

    install_log_redaction()
    for noisy in ("alembic", "httpx", "rq.worker"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


@cli.command("init-db")
def init_db_cmd() -> None:
    """Create or upgrade the database schema (Alembic)."""
    from gateway.provisioning import init_db

    settings = load_settings()
    init_db(settings)
    click.echo(f"database ready: {settings.db_url}")


@cli.command("gen-keys")
def gen_keys_cmd() -> None:
    """Generate the missing TEST keys (declarant, sandbox authorities) in the keys dir."""
    from gateway.provisioning import ensure_keys

    made = ensure_keys(load_settings())
    click.echo("\n".join(f"generated {p}" for p in made) or "all keys present")


@cli.command("create-org")
@click.option("--name", required=True, help="Organisation name.")
@click.option("--codes", required=True, help="Comma-separated registered codes.")
@click.option("--dxp-id", default="DXPENT0000000000", show_default=True)
@click.option(
    "--role",
    default="broker",
    show_default=True,
    type=click.Choice(["seller", "broker", "port", "authority", "admin"]),
)
@click.option("--key-name", default=None, help="A label for the API key (see `api-keys list`).")
def create_org_cmd(name: str, codes: str, dxp_id: str, role: str, key_name: str | None) -> None:
    """Create an organisation (or reuse one by name) and print a new API key (shown once,
    stored hashed); more keys: `api-keys create`."""
    from gateway.cli_privacy import operator
    from gateway.provisioning import create_org

    org_id, key = create_org(
        load_settings(),
        name,
        [c.strip() for c in codes.split(",") if c.strip()],
        dxp_id,
        role,
        key_name=key_name,
        actor=operator(),
    )
    click.echo(json.dumps({"org_id": org_id, "api_key": key}))


@cli.command()
@click.option(
    "--queue",
    "queue_name",
    default=None,
    help="Queue to serve (default: the delivery queue; `batches` for bulk uploads).",
)
@click.option(
    "--slot",
    default=None,
    help="This worker's own queue (QUEUE.SLOT), served first; what a killed predecessor on "
    "the slot left unfinished is put back at start. One live worker per slot.",
)
def worker(queue_name: str | None, slot: str | None) -> None:
    """Run one rq worker on the delivery queue (or the one named)."""
    import redis
    from rq import Queue, SimpleWorker, Worker
    from rq.serializers import JSONSerializer

    from gateway.bootstrap import redis_connection
    from gateway.jobs.delivery import warm_worker
    from gateway.worker_queues import (
        WORKER_TTL,
        SlotTakenError,
        claim_slot,
        recover_leftovers,
        slot_queue_name,
    )

    settings = load_settings()
    shared = queue_name or settings.queue_name
    try:
        own = slot_queue_name(shared, slot) if slot is not None else None
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--slot") from None
    # Warm: every forked work horse inherits keys, schemas, clients, the job's modules and
    # the compiled delivery statements.
    warm_worker(settings)
    if settings.worker_class not in ("fork", "simple"):
        raise click.UsageError(
            f"worker_class must be fork or simple, not {settings.worker_class!r}"
        )
    worker_class = SimpleWorker if settings.worker_class == "simple" else Worker
    stopping: list[int] = []

    def note_stop(signum: int, _frame: object) -> None:
        stopping.append(signum)

    while not stopping:
        # rq quits its loop when Redis goes away; the work is in the database, so wait
        # for Redis and work again instead of leaving the queue unserved. Between two rq
        # loops a signal only notes the stop (rq installs its own handlers inside work()).
        signal.signal(signal.SIGTERM, note_stop)
        signal.signal(signal.SIGINT, note_stop)
        w = None
        try:
            connection = redis_connection(settings)
            if own:
                claim_slot(connection, own)
                recover_leftovers(Queue(own, connection=connection, serializer=JSONSerializer))
            w = worker_class(
                [own, shared] if own else [shared],
                connection=connection,
                serializer=JSONSerializer,
                maintenance_interval=30,
                worker_ttl=WORKER_TTL,
            )
            if stopping:
                return
            w.work(with_scheduler=False, logging_level="WARNING")
        except SlotTakenError as exc:
            raise click.ClickException(str(exc)) from None
        except SystemExit:
            return
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            w = None
        if w is not None and w._stop_requested:  # Ctrl-C / SIGTERM: a warm shutdown
            return
        time.sleep(1.0)


@cli.command()
def relay() -> None:
    """Run the outbox relay (enqueues due dispatches from the database)."""
    from gateway.jobs.relay import run_relay

    _exit_quietly_on_signals()
    run_relay(load_settings())


@cli.command()
def sandbox() -> None:
    """Run the sandbox authorities on the sandbox port."""
    from sandbox.server import serve

    serve(load_settings())


@cli.command()
def run() -> None:
    """Start everything with embedded defaults (what `make run` does)."""
    from gateway.launcher import run as run_all

    sys.exit(run_all(load_settings()))


def _client_base() -> str:
    s = load_settings()
    return f"http://{s.host}:{s.port}"


@cli.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--key", envvar="GATEWAY_API_KEY", required=True, help="API key (or GATEWAY_API_KEY)."
)
@click.option("--url", default=None, help="Gateway base URL.")
@click.option("--verbose", "-v", is_flag=True, help="Print each whole JSON answer.")
def submit(files: tuple[Path, ...], key: str, url: str | None, verbose: bool) -> None:
    """Submit CEB messages (.xml, or .json of the same document); prints each answer."""
    base = url or _client_base()
    failed = False
    for path in files:
        resp = httpx.post(
            f"{base}/api/v1/declarations",
            content=path.read_bytes(),
            headers={
                "Authorization": f"Bearer {key}",
                "Content-Type": "application/json"
                if path.suffix.lower() == ".json"
                else "application/xml",
            },
            timeout=30,
        )
        click.echo(_answer_lines(path, resp, verbose))
        failed = failed or resp.status_code >= 400
    sys.exit(1 if failed else 0)


def _answer_lines(path: Path, resp: httpx.Response, verbose: bool) -> str:
    """One line per declaration accepted, or the problem and each error with its path."""
    try:
        body = resp.json()
    except ValueError:
        return f"{path}: {resp.status_code} {resp.text[:200]}"
    if verbose:
        return f"{path}: {resp.status_code}\n{json.dumps(body, ensure_ascii=False, indent=2)}"
    if resp.status_code < 400:
        word = "replayed" if body.get("replayed") else body.get("status", "")
        ids = "  ".join(d["id"] for d in body.get("declarations", []))
        return f"{path}: {resp.status_code} {word} {body.get('type', '')}  {ids}"
    lines = [f"{path}: {resp.status_code} {body.get('title', '')}: {body.get('detail', '')}"]
    for e in body.get("errors", []):
        where = e.get("path", "") + (f" (line {e['line']})" if e.get("line") else "")
        lines.append(f"  {where}  {e.get('code', '')}  {e.get('message', '')}")
    existing = body.get("existing_declaration_ids") or []
    if existing:
        lines.append(f"  already declared: {', '.join(existing)}")
    return "\n".join(lines)


BATCH_MEDIA = {
    ".zip": "application/zip",
    ".csv": "text/csv",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _where(e: dict) -> str:  # type: ignore[type-arg]
    """Where an error is: the row and column of a spreadsheet, the path and line of a file."""
    if "row" in e:
        return f"row {e['row']}" + (f" column {e['column']}" if e.get("column") else "")
    return str(e.get("path", "")) + (f" (line {e['line']})" if e.get("line") else "")


def _print_batch_items(body: dict) -> None:  # type: ignore[type-arg]
    for item in body.get("items", []):
        head = f"  {item['item']:>5}  {item['name']:<24} {item['status']:<9}"
        if item["status"] == "accepted":
            click.echo(f"{head} {', '.join(item['declaration_ids'])}")
            continue
        click.echo(f"{head} {item['http_status'] or ''} {item['title'] or ''}")
        for e in item["errors"]:
            zh = f" / {e['message_zh']}" if e.get("message_zh") else ""
            click.echo(f"         {_where(e)}: [{e['code']}] {e['message']}{zh}")


@cli.command("submit-batch")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--template",
    default=None,
    help="CEB311/order, CEB411/payment, CEB511/waybill, CEB621/inventory (default: by header).",
)
@click.option("--wait", "wait_s", default=60.0, show_default=True, help="Seconds to wait for it.")
@click.option("--rejected-only", is_flag=True, help="List only the items that were refused.")
@click.option(
    "--key", envvar="GATEWAY_API_KEY", required=True, help="API key (or GATEWAY_API_KEY)."
)
@click.option("--url", default=None, help="Gateway base URL.")
def submit_batch_cmd(
    file: Path, template: str | None, wait_s: float, rejected_only: bool, key: str, url: str | None
) -> None:
    """Upload a ZIP of messages, or a CSV/XLSX per template; print each item's result."""
    base = url or _client_base()
    headers = {
        "Authorization": f"Bearer {key}",
        "Content-Type": BATCH_MEDIA.get(file.suffix.lower(), "application/octet-stream"),
        "X-Filename": file.name,
    }
    params = {"wait": str(min(60.0, wait_s))} | ({"template": template} if template else {})
    with httpx.Client(
        base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=90
    ) as http:
        resp = http.post(
            "/api/v1/declarations/batch", content=file.read_bytes(), headers=headers, params=params
        )
        body = resp.json()
        if resp.status_code >= 400:
            click.echo(
                f"{file}: {resp.status_code}\n{json.dumps(body, ensure_ascii=False, indent=2)}"
            )
            sys.exit(1)
        deadline = time.monotonic() + wait_s
        while body["status"] in ("queued", "running") and time.monotonic() < deadline:
            click.echo(f"{body['id']}: {body['status']} {body['processed']}/{body['total']}")
            body = http.get(resp.headers["Location"], params={"wait": "10"}).json()
        click.echo(
            f"{body['id']}  {body['status']}  {body['total']} item(s): "
            f"{body['accepted']} accepted, {body['rejected']} rejected"
        )
        query = {"limit": "1000"} | ({"status": "rejected"} if rejected_only else {})
        page = http.get(resp.headers["Location"], params=query).json()
        while True:
            _print_batch_items(page)
            if not page.get("next_cursor"):
                break
            page = http.get(
                resp.headers["Location"], params=query | {"cursor": page["next_cursor"]}
            ).json()
    sys.exit(0 if body["status"] == "done" and not body["rejected"] else 1)


@cli.command()
@click.argument("declaration_id")
@click.option(
    "--key", envvar="GATEWAY_API_KEY", required=True, help="API key (or GATEWAY_API_KEY)."
)
@click.option("--url", default=None, help="Gateway base URL.")
def status(declaration_id: str, key: str, url: str | None) -> None:
    """Show a declaration's status and timeline."""
    resp = httpx.get(
        f"{url or _client_base()}/api/v1/declarations/{declaration_id}",
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    body = resp.json()
    if resp.status_code != 200:
        click.echo(json.dumps(body, ensure_ascii=False, indent=2))
        sys.exit(1)
    click.echo(f"{body['id']}  {body['type']}  {body['status']}")
    for name, a in body["authorities"].items():
        click.echo(f"  {name:<11} {a['status'] or '-':<5} {a['phase']}")
    for e in body["events"]:
        click.echo(f"  {e['at']}  {e['source']:<9} {e['kind']:<10} {e['info'] or ''}")


@cli.command()
@click.option(
    "--documents",
    default=1,
    show_default=True,
    type=click.IntRange(1, 100),
    help="How many inventory lists in the message.",
)
@click.option(
    "--parcel",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Instead: write a matching order, payment, waybill and inventory list "
    "(CEB311/411/511/621) into this folder.",
)
def example(documents: int, parcel: Path | None) -> None:
    """Print examples/CEB621.xml with fresh guids and numbers, ready to submit."""
    from gateway.examples import fresh_ceb621, fresh_parcel

    if parcel is None:
        sys.stdout.buffer.write(fresh_ceb621(documents))
        return
    parcel.mkdir(parents=True, exist_ok=True)
    for message_type, body in fresh_parcel().items():
        (parcel / f"{message_type}.xml").write_bytes(body)
        click.echo(parcel / f"{message_type}.xml")


@cli.command("validate")
@click.argument("files", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def validate_cmd(files: tuple[Path, ...], as_json: bool) -> None:
    """Validate CEB XML files or ZIPs of them offline (the same report as the API)."""
    from gateway.services.validate import validate_upload
    from gateway.xml.parsing import ParseLimits

    s = load_settings()
    limits = ParseLimits(max_bytes=s.max_body_bytes, max_depth=s.max_xml_depth)
    reports = [r for f in files for r in validate_upload(str(f), f.read_bytes(), limits)]
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in reports], ensure_ascii=False, indent=2))
    for r in [] if as_json else reports:
        if r.valid:
            click.echo(f"{r.name}: valid {r.message_type} ({r.documents} document(s))")
            continue
        click.echo(f"{r.name}: {r.status} {r.title}")
        for e in r.errors:
            where = f"{e.path}" + (f" (line {e.line})" if e.line else "")
            zh = f" / {e.message_zh}" if e.message_zh else ""
            click.echo(f"  {where}: [{e.code}] {e.message}{zh}")
    sys.exit(0 if all(r.valid for r in reports) else 1)


@cli.group()
def keys() -> None:
    """Organisations' signing keys: generate, import, list, rotate."""


def _org_id(engine, org: str) -> str:  # type: ignore[no-untyped-def]
    from sqlalchemy import or_, select

    from gateway.persistence import tables as t

    with engine.connect() as conn:
        found = conn.execute(
            select(t.organisations.c.id).where(
                or_(t.organisations.c.id == org, t.organisations.c.name == org)
            )
        ).scalar()
    if found is None:
        raise click.ClickException(f"no organisation {org!r} (give its id or name)")
    return str(found)


def _print_key(info) -> None:  # type: ignore[no-untyped-def]
    warn = f"  WARNING: expires in {info.days_left} days, rotate it" if info.expiring else ""
    click.echo(
        f"{info.id}  {info.org_id}  {info.status:<7} {info.key_type:<3} {info.provider:<6} "
        f"serial {info.key_name}  until {info.not_after:%Y-%m-%d}{warn}"
    )


@keys.command("generate")
@click.option("--org", required=True, help="Organisation id or name.")
@click.option(
    "--type", "key_type", default="rsa", show_default=True, type=click.Choice(["rsa", "ec", "sm2"])
)
def keys_generate(org: str, key_type: str) -> None:
    """Generate a TEST key pair + self-signed certificate and make it the org's active key
    (the previous one is retired; its signatures still verify until it expires)."""
    from gateway.persistence.database import get_engine
    from gateway.services.keyring import generate_key

    s = load_settings()
    engine = get_engine(s.db_url)
    from gateway.cli_privacy import operator

    _print_key(
        generate_key(
            engine,
            s.keys_path,
            s.registered_path,
            _org_id(engine, org),
            key_type,
            actor=operator(),
        )
    )


@keys.command("import")
@click.option("--org", required=True, help="Organisation id or name.")
@click.option(
    "--pem",
    "pem",
    nargs=2,
    type=click.Path(exists=True),
    default=None,
    metavar="KEY CERT",
    help="A PEM private key and its certificate.",
)
@click.option("--pkcs12", type=click.Path(exists=True), default=None, help="A .p12/.pfx file.")
@click.option("--password-env", default=None, help="Env var holding the PKCS#12 password.")
@click.option("--password-file", default=None, help="File holding the PKCS#12 password.")
@click.option("--pkcs11-library", default=None, help="PKCS#11 module (.so) of a token.")
@click.option("--token", default=None, help="PKCS#11 token label.")
@click.option("--key-label", default=None, help="PKCS#11 private key label.")
@click.option("--pin-env", default=None, help="Env var holding the token PIN.")
@click.option("--pin-file", default=None, help="File holding the token PIN.")
@click.option("--cert", default=None, help="Certificate file (PKCS#11, when not on the token).")
@click.option(
    "--policy",
    default=None,
    help="Signature policy for this key (default: by key type), e.g. rsa-sha1-legacy "
    "for a counterparty that still requires it.",
)
def keys_import(
    org: str,
    pem: tuple[str, str] | None,
    pkcs12: str | None,
    password_env: str | None,
    password_file: str | None,
    pkcs11_library: str | None,
    token: str | None,
    key_label: str | None,
    pin_env: str | None,
    pin_file: str | None,
    cert: str | None,
    policy: str | None,
) -> None:
    """Register an existing key (PEM, PKCS#12 or a PKCS#11 token) as the org's active key.
    Passwords and PINs are never stored: name an environment variable or a file."""
    from gateway.cli_privacy import operator
    from gateway.persistence.database import get_engine
    from gateway.services.keyring import register_key

    if sum(x is not None for x in (pem, pkcs12, pkcs11_library)) != 1:
        raise click.UsageError("give exactly one of --pem, --pkcs12, --pkcs11-library")
    if pem:
        provider, config = (
            "file",
            {"key": str(Path(pem[0]).resolve()), "cert": str(Path(pem[1]).resolve())},
        )
    elif pkcs12:
        provider, config = (
            "pkcs12",
            {
                "path": str(Path(pkcs12).resolve()),
                "password_env": password_env,
                "password_file": password_file,
            },
        )
    else:
        if not (token and key_label):
            raise click.UsageError("--pkcs11-library needs --token and --key-label")
        provider, config = (
            "pkcs11",
            {
                "library": pkcs11_library,
                "token": token,
                "key_label": key_label,
                "pin_env": pin_env,
                "pin_file": pin_file,
                "cert": cert,
            },
        )
    if policy:
        from signing.policy import policy_by_name

        try:
            config["policy"] = policy_by_name(policy).name
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--policy") from None
    s = load_settings()
    engine = get_engine(s.db_url)
    try:
        info = register_key(
            engine,
            s.registered_path,
            _org_id(engine, org),
            provider,
            {k: v for k, v in config.items() if v is not None},
            actor=operator(),
        )
    except Exception as exc:
        raise click.ClickException(str(exc)) from None
    _print_key(info)


@keys.command("list")
@click.option("--org", default=None, help="Only this organisation (id or name).")
def keys_list(org: str | None) -> None:
    """Every key with its status and expiry; warns about active keys expiring soon."""
    from gateway.persistence.database import get_engine
    from gateway.services.keyring import list_keys

    engine = get_engine(load_settings().db_url)
    for info in list_keys(engine, _org_id(engine, org) if org else None):
        _print_key(info)


@keys.command("rotate")
@click.option("--org", required=True, help="Organisation id or name.")
@click.option(
    "--type",
    "key_type",
    default=None,
    type=click.Choice(["rsa", "ec", "sm2"]),
    help="Key type of the new key (default: the current one's).",
)
@click.pass_context
def keys_rotate(ctx: click.Context, org: str, key_type: str | None) -> None:
    """Generate a new TEST key for the org and retire the old one (for real keys, use
    `keys import` with the new card or token)."""
    from gateway.persistence.database import get_engine
    from gateway.services.keyring import list_keys

    engine = get_engine(load_settings().db_url)
    current = [k for k in list_keys(engine, _org_id(engine, org)) if k.status == "active"]
    ctx.invoke(
        keys_generate, org=org, key_type=key_type or (current[0].key_type if current else "rsa")
    )


@cli.command("export")
@click.option("--org", default=None, help="Only this organisation (name).")
@click.option("--status", "status_", default=None, help="Only this status.")
@click.option("--type", "message_type", default=None, help="Only this message type.")
@click.option("--since", type=click.DateTime(["%Y-%m-%d"]), default=None, help="From (UTC).")
@click.option("--until", type=click.DateTime(["%Y-%m-%d"]), default=None, help="Before (UTC).")
@click.option("--format", "fmt", type=click.Choice(["csv", "jsonl"]), default="csv")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), default=None)
def export_cmd(
    org: str | None,
    status_: str | None,
    message_type: str | None,
    since: object,
    until: object,
    fmt: str,
    output: Path | None,
) -> None:
    """Export declarations with statuses, numbers and tax (no personal data) as CSV/JSONL."""
    from datetime import UTC

    from gateway.persistence.database import get_engine
    from gateway.persistence.exports import declarations_for_export
    from gateway.services.export import render

    engine = get_engine(load_settings().db_url)
    org_id = _org_id(engine, org) if org else None

    def utc(value: object) -> object:
        return value.replace(tzinfo=UTC) if value is not None else None  # type: ignore[attr-defined]

    with engine.connect() as conn:
        rows = declarations_for_export(
            conn,
            org_id=org_id,
            status=status_,
            message_type=message_type,
            since=utc(since),  # type: ignore[arg-type]
            until=utc(until),  # type: ignore[arg-type]
        )
        out = output.open("w", encoding="utf-8", newline="") if output else sys.stdout
        try:
            for chunk in render(rows, fmt):
                out.write(chunk)
        finally:
            if output:
                out.close()


from gateway.outage_cli import outage  # noqa: E402  (its own module: planned outages)

cli.add_command(outage)


from gateway.cli_privacy import audit, data_keys  # noqa: E402

cli.add_command(audit)
cli.add_command(data_keys)


def _add_access_commands() -> None:
    """The `orgs`, `api-keys` and `users` groups live in gateway/cli_access.py."""
    from gateway.cli_access import COMMANDS

    for command in COMMANDS:
        cli.add_command(command)


_add_access_commands()
