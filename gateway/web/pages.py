"""The declarations list (filters, counts per status), the action-needed view, and one
declaration's page, each with a fragment htmx polls for live updates."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, render_template, request, url_for

from gateway.api.filters import STATUSES, list_query
from gateway.domain.errors import InvalidQuery
from gateway.domain.explain import explain
from gateway.domain.masking import mask_text
from gateway.persistence import lookups
from gateway.persistence import repository as repo
from gateway.services.dossier import dossier
from gateway.web.blueprint import bp

FILTER_FIELDS = ("status", "authority_status", "type", "since", "until", "code", "q")
TYPES = ("CEB311", "CEB411", "CEB511", "CEB621", "CEB623", "CEB625", "CEB303", "CEB505",
         "CEB603", "CEB605", "CEB507", "CEB509", "CEB701")  # fmt: skip
AUTHORITY_CODES = ("2", "120", "100", "300", "500", "501", "800", "899")


def _rt() -> Any:
    return current_app.extensions["gateway.runtime"]()


def _partial() -> bool:
    return bool(request.headers.get("HX-Request"))


def _authorities(conn: Any, rows: list[Any]) -> dict[str, list[Any]]:
    return lookups.authority_infos(conn, [r["id"] for r in rows])


@bp.get("/")
def declarations() -> str:
    """Your declarations, newest first, filtered, with the counts per status."""
    args = {k: request.args.get(k, "") for k in FILTER_FIELDS}
    errors, rows, counts, next_cursor = [], [], {}, None
    authorities: dict[str, list[Any]] = {}
    try:
        query = list_query(request.args)
    except InvalidQuery as exc:
        errors = exc.violations
    else:
        with _rt().engine.connect() as conn:
            rows = repo.list_declarations(
                conn, g.principal.viewer, before=query.cursor, limit=query.limit + 1,
                where=query.where,
            )  # fmt: skip
            counts = repo.count_by_status(conn, g.principal.viewer, query.where)
            authorities = _authorities(conn, rows[: query.limit])
        if len(rows) > query.limit:
            next_cursor = rows[query.limit - 1]["id"]
        rows = rows[: query.limit]
    template = "_declaration_list.html" if _partial() else "declarations.html"

    def url(**changes: str | None) -> str:
        """This list's URL with some filters changed (None drops one); a new page 1."""
        merged = {k: v for k, v in {**args, **changes}.items() if v}
        return url_for("web.declarations", **merged)

    return render_template(
        template,
        url=url,
        rows=rows,
        authorities=authorities,
        counts=counts,
        total=sum(counts.values()),
        statuses=STATUSES,
        types=TYPES,
        authority_codes=AUTHORITY_CODES,
        args=args,
        errors=errors,
        next_cursor=next_cursor,
        cursor=request.args.get("cursor", ""),
    )


def _why(conn: Any, row: Any, authorities: list[Any]) -> str:
    """In a few words, what the broker has to look at."""
    if row["status"] in ("rejected", "held"):
        for a in authorities:
            if a["code"] and (a["code"] == "100" or a["code"].startswith(("-", "5"))):
                ex = explain(a["code"], a["info"] or "")
                detail = mask_text((a["info"] or "")[:160])
                head = f"{a['authority']} {a['code']}: {ex.headline_zh} / {ex.headline_en}"
                return f"{head} — {detail}"
        return row["status"]
    if row["status"] == "inspection":
        asked = [a["authority"] for a in authorities if a["code"] == "500"]
        return "查验 / inspection" + (f" by {', '.join(asked)}" if asked else "")
    missing = lookups.missing_partners(conn, row)
    if missing:
        return "三单不齐 / not yet declared: " + ", ".join(missing)
    return row["status"]


@bp.get("/action")
def action() -> str:
    """What needs a broker: rejected, inspected, held, and lists missing a partner."""
    cursor = request.args.get("cursor") or None
    limit = 50
    with _rt().engine.connect() as conn:
        rows = lookups.action_needed(conn, g.principal.viewer, before=cursor, limit=limit + 1)
        page = rows[:limit]
        authorities = _authorities(conn, page)
        why = {r["id"]: _why(conn, r, authorities[r["id"]]) for r in page}
    template = "_action_list.html" if _partial() else "action.html"
    return render_template(
        template,
        rows=page,
        authorities=authorities,
        why=why,
        next_cursor=page[-1]["id"] if len(rows) > limit else None,
        cursor=cursor or "",
    )


@bp.get("/declarations/<declaration_id>")
def declaration(declaration_id: str) -> str:
    """One declaration: status, authorities, timeline, inspection, tax, 三单, rejections."""
    d = dossier(_rt(), g.principal.viewer, declaration_id)
    template = "_dossier.html" if _partial() else "declaration.html"
    return render_template(template, d=d)
