"""CLI groups for access: `orgs`, `api-keys` and `users` (`keys` is the signing-keys group)."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from gateway.domain.access import Role
from gateway.domain.errors import GatewayError
from gateway.settings import load_settings

ROLES = click.Choice([r.value for r in Role])


def _engine() -> Any:
    from gateway.persistence.database import get_engine

    return get_engine(load_settings().db_url)


def _when(value: Any) -> str:
    return f"{value:%Y-%m-%d %H:%M}" if value is not None else "-"


def _operator() -> Any:
    """The operator at this terminal, as the audit trail names them."""
    from gateway.cli_privacy import operator

    return operator()


def _run(fn: Any, *args: Any, **kwargs: Any) -> Any:
    """Call a use case; its GatewayError becomes a one-line CLI error, not a traceback."""
    try:
        return fn(*args, **kwargs)
    except GatewayError as exc:
        raise click.ClickException(exc.detail) from None


@click.group("orgs")
def orgs() -> None:
    """Organisations: their registered codes, DXP id, keys and users."""


@orgs.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def orgs_list(as_json: bool) -> None:
    """Every organisation with its codes, DXP id and counts of live keys and users."""
    from gateway.persistence.accounts import list_orgs

    with _engine().connect() as conn:
        rows = list_orgs(conn)
    if as_json:
        out = [
            {k: r[k] for k in ("id", "name", "codes", "dxp_id", "api_keys", "users")} for r in rows
        ]
        click.echo(json.dumps(out, ensure_ascii=False, indent=2))
        return
    for r in rows:
        click.echo(
            f"{r['id']}  {r['name']}  codes {','.join(r['codes'])}  dxp {r['dxp_id']}  "
            f"{r['api_keys']} key(s), {r['users']} user(s)"
        )


@orgs.command("update")
@click.option("--org", required=True, help="Organisation id or name.")
@click.option("--codes", default=None, help="Comma-separated registered codes (replaces them).")
@click.option("--dxp-id", default=None, help="The DXP id it sends under.")
def orgs_update(org: str, codes: str | None, dxp_id: str | None) -> None:
    """Change an organisation's registered codes or DXP id; visibility follows at once."""
    from gateway.persistence.accounts import update_org
    from gateway.services.accounts import get_org

    engine = _engine()
    org_id = str(_run(get_org, engine, org)["id"])
    values: dict[str, Any] = {}
    if codes is not None:
        values["codes"] = [c.strip() for c in codes.split(",") if c.strip()]
    if dxp_id:
        values["dxp_id"] = dxp_id
    if not values:
        raise click.UsageError("give --codes and/or --dxp-id")
    with engine.begin() as conn:
        update_org(conn, org_id, **values)
    click.echo(f"updated {org_id}: {json.dumps(values)}")


@click.group("api-keys")
def api_keys() -> None:
    """API keys (Bearer): create (shown once), list, revoke. Stored only as SHA-256."""


@api_keys.command("create")
@click.option("--org", required=True, help="Organisation id or name.")
@click.option("--role", required=True, type=ROLES)
@click.option("--name", default=None, help="A label, e.g. erp or dashboard.")
def api_keys_create(org: str, role: str, name: str | None) -> None:
    """Create a key and print it once: it cannot be shown again."""
    from gateway.services.accounts import issue_key

    issued = _run(issue_key, _engine(), org, role, name, actor=_operator())
    click.echo(
        json.dumps(
            {
                "key_id": issued.id,
                "org_id": issued.org_id,
                "role": issued.role,
                "name": issued.name,
                "api_key": issued.secret,
            }
        )
    )
    click.echo("Store the api_key now: the gateway keeps only its hash.", err=True)


@api_keys.command("list")
@click.option("--org", default=None, help="Only this organisation (id or name).")
@click.option("--all", "show_all", is_flag=True, help="Include revoked keys.")
def api_keys_list(org: str | None, show_all: bool) -> None:
    """Keys with prefix, role, label, created, last used; never the key itself."""
    from gateway.services.accounts import list_api_keys

    for k in _run(list_api_keys, _engine(), org):
        if k["revoked_at"] is not None and not show_all:
            continue
        state = f"revoked {_when(k['revoked_at'])}" if k["revoked_at"] else "live"
        click.echo(
            f"{k['id']}  {k['org_name']}  {k['prefix']}…  {k['role']:<9} "
            f"{k['name'] or '-':<12} created {_when(k['created_at'])}  "
            f"last used {_when(k['last_used_at'])}  {state}"
        )


@api_keys.command("revoke")
@click.argument("key_id")
def api_keys_revoke(key_id: str) -> None:
    """Revoke a key: every request with it is refused (401) from now on."""
    from gateway.services.accounts import revoke_api_key

    _run(revoke_api_key, _engine(), key_id, actor=_operator())
    click.echo(f"revoked {key_id}")


@click.group("users")
def users() -> None:
    """Dashboard users of an organisation (passwords kept as scrypt hashes)."""


@users.command("create")
@click.option("--org", required=True, help="Organisation id or name.")
@click.option("--username", required=True)
@click.option("--role", required=True, type=ROLES)
@click.option("--email", default=None)
@click.option(
    "--password-env",
    default=None,
    help="Read the password from this environment variable (else it is asked for).",
)
def users_create(
    org: str, username: str, role: str, email: str | None, password_env: str | None
) -> None:
    """Create a user; the password is asked for (hidden) or read from --password-env."""
    from gateway.services.accounts import create_user

    if password_env:
        password = os.environ.get(password_env, "")
        if not password:
            raise click.ClickException(f"${password_env} is empty or not set")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user_id = _run(create_user, _engine(), org, username, password, role, email, actor=_operator())
    click.echo(json.dumps({"user_id": user_id, "username": username.strip().lower()}))


@users.command("list")
@click.option("--org", default=None, help="Only this organisation (id or name).")
def users_list(org: str | None) -> None:
    """Users with their organisation, role and state."""
    from gateway.persistence.accounts import list_users
    from gateway.services.accounts import get_org

    org_id = str(_run(get_org, _engine(), org)["id"]) if org else None
    with _engine().connect() as conn:
        rows = list_users(conn, org_id)
    for u in rows:
        state = f"disabled {_when(u['disabled_at'])}" if u["disabled_at"] else "enabled"
        click.echo(
            f"{u['id']}  {u['org_name']}  {u['username']}  {u['role']:<9} "
            f"{u['email'] or '-'}  created {_when(u['created_at'])}  {state}"
        )


@users.command("disable")
@click.argument("user_id")
def users_disable(user_id: str) -> None:
    """Disable a user: it can no longer log in."""
    from gateway.services.accounts import disable_user

    _run(disable_user, _engine(), user_id, actor=_operator())
    click.echo(f"disabled {user_id}")


COMMANDS = (orgs, api_keys, users)
