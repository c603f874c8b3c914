"""Recompute a declaration's overall status after anything changed, inside the caller's
transaction, and act on the change: release once to the port.

Release once: the release dispatch is written in the same transaction as the status change;
a partial unique index allows one release per consignment, so a second attempt (a retried
receipt, a concurrent worker) cannot create a second release.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from gateway.domain.clearance import IllegalTransition, check_transition, derive_status
from gateway.domain.statuses import Authority, DeclarationStatus, Phase
from gateway.persistence import repository as repo
from gateway.persistence.ids import new_id
from gateway.services.runtime import Runtime
from gateway.services.tax_quota import count_release
from gateway.xml.parsing import parse_xml
from gateway.xml.port_messages import Consignment, build_release
from schemas.registry import CEB_NS


def refresh_status(
    conn: Any,
    rt: Runtime,
    declaration: Any,
    *,
    source: str,
    at: Any,
    ring: list[str],
    current_phases: dict[Authority, Phase] | None = None,
) -> str:
    """Derive, check and store the status; an illegal change is recorded as an event only.
    Dispatch ids to enqueue after the commit are appended to ``ring``.

    The declaration is read again here, locked, inside the caller's transaction: a row read
    earlier may predate a concurrent change (an arrival committed while a receipt was being
    applied), and deciding on it could miss the release or undo the change. A caller that
    read the row and its authority phases under this transaction's lock, and kept them up
    to date with its own writes, passes ``current_phases`` and saves the two reads."""
    if current_phases is None:
        # Locked: on PostgreSQL (read committed) a plain read here may predate a receipt
        # committing meanwhile, and the update below would then overwrite its status (a
        # worker recording a send once set "submitted" over "under_review": found by T1).
        declaration = repo.get_declaration(conn, declaration["id"], for_update=True) or declaration
        phases = {
            Authority(r["authority"]): Phase(r["phase"])
            for r in repo.authority_rows(conn, declaration["id"])
        }
    else:
        phases = current_phases
    current = DeclarationStatus(declaration["status"])
    awaiting = bool(declaration["requires_arrival"]) and declaration["arrived_at"] is None
    proposed = derive_status(phases, all_sent=False, current=current, awaiting_arrival=awaiting)
    if_sent = derive_status(phases, all_sent=True, current=current, awaiting_arrival=awaiting)
    if proposed != if_sent:  # only then does it matter whether every dispatch went out
        states = repo.dispatch_states(conn, declaration["message_id"])
        if states and all(s == "sent" for s in states.values()):
            proposed = if_sent
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
    if proposed == DeclarationStatus.RELEASED:
        _release(conn, rt, declaration, phases, at, ring)
    return proposed.value


def _release(
    conn: Any,
    rt: Runtime,
    declaration: Any,
    phases: dict[Authority, Phase],
    at: Any,
    ring: list[str],
) -> None:
    cleared = [a.value for a, p in phases.items() if p >= Phase.RELEASED]
    repo.update_declaration(conn, declaration["id"], released_at=at)
    count_release(conn, declaration, at)  # the buyer's annual quota
    if not rt.rules.needs_port(declaration["type"]):
        return
    # ``declaration`` is current: read under this transaction's lock, with its own writes.
    port_code = _port_code(conn, declaration)
    payload = rt.sign_as_gateway(
        build_release(
            port_code,
            Consignment(
                logistics_no=declaration["logistics_no"] or declaration["doc_guid"],
                invt_no=declaration["invt_no"],
            ),
            cleared,
        )
    )
    dispatch_id = new_id("dsp")
    repo.insert_dispatches(
        conn,
        [
            dict(
                id=dispatch_id,
                message_id=declaration["message_id"],
                authority="port",
                kind="release",
                declaration_id=declaration["id"],
                msg_type="PortRelease",
                payload=payload,
                state="pending",
                attempts=0,
                next_attempt_at=at + timedelta(seconds=rt.doorbell_grace),
                created_at=at,
            )
        ],
    )
    repo.insert_events(
        conn,
        [
            dict(
                declaration_id=declaration["id"],
                at=at,
                kind="release_queued",
                source="gateway",
                status="released",
                info=f"released by {', '.join(cleared)}; one release to the port "
                f"(dispatch {dispatch_id})",
            )
        ],
    )
    ring.append(dispatch_id)


def _port_code(conn: Any, declaration: Any) -> str:
    msg = repo.get_message(conn, declaration["message_id"])
    root = parse_xml(msg["raw_xml"]) if msg is not None else None
    code = root.findtext(f".//{{{CEB_NS}}}portCode") if root is not None else None
    return (code or "0000").strip()
