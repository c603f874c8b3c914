"""Recompute a declaration's overall status after anything changed, inside the caller's txn."""

from __future__ import annotations

from typing import Any

from gateway.domain.clearance import IllegalTransition, check_transition, derive_status
from gateway.domain.statuses import Authority, DeclarationStatus, Phase
from gateway.persistence import repository as repo


def refresh_status(conn: Any, declaration: Any, *, source: str, at: Any) -> str:
    """Derive, check and store the status; an illegal change is recorded as an event only."""
    phases = {
        Authority(r["authority"]): Phase(r["phase"])
        for r in repo.authority_rows(conn, declaration["id"])
    }
    states = repo.dispatch_states(conn, declaration["message_id"])
    all_sent = bool(states) and all(s == "sent" for s in states.values())
    current = DeclarationStatus(declaration["status"])
    proposed = derive_status(phases, all_sent=all_sent, current=current)
    if proposed == current:
        return current.value
    try:
        check_transition(current, proposed)
    except IllegalTransition as exc:
        repo.insert_events(
            conn,
            [
                dict(
                    declaration_id=declaration["id"],
                    at=at,
                    kind="illegal_transition",
                    source=source,
                    status=current.value,
                    info=str(exc),
                )
            ],
        )
        return current.value
    repo.update_declaration(conn, declaration["id"], status=proposed.value)
    return proposed.value
