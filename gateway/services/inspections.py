"""Inspect once: keep one joint inspection per consignment in step with the receipts."""

from __future__ import annotations

from typing import Any

from gateway.domain.inspection import (
    InspectionStep,
    JointInspection,
    inspection_step,
    may_touch_inspection,
)
from gateway.domain.statuses import Authority, Phase
from gateway.persistence import repository as repo
from gateway.persistence.ids import new_id


def _current(row: Any) -> JointInspection | None:
    if row is None:
        return None
    return JointInspection(
        frozenset(Authority(a) for a in row["requested_by"]),
        {Authority(a): r["code"] for a, r in row["results"].items()},
    )


def record_inspection(
    conn: Any,
    declaration_id: str,
    authority: Authority,
    before: Phase,
    after: Phase,
    code: str,
    info: str,
    at: Any,
) -> None:
    """Open, join or complete the consignment's one joint inspection, with events."""
    if not may_touch_inspection(before, after):
        return  # most receipts: nothing to read
    row = repo.joint_inspection_of(conn, declaration_id)
    step = inspection_step(_current(row), authority, before, after)
    if step == InspectionStep.NONE:
        return
    if step == InspectionStep.OPEN:
        repo.insert_joint_inspection(
            conn,
            id=new_id("jin"),
            declaration_id=declaration_id,
            opened_at=at,
            requested_by=[authority.value],
            results={},
        )
        text = f"joint inspection opened at the request of {authority.value}"
    elif step == InspectionStep.JOIN:
        requested = [*row["requested_by"], authority.value]
        # A late selection joins the same record, reopened until the joiner reports too.
        repo.update_joint_inspection(conn, declaration_id, requested_by=requested, closed_at=None)
        state = "completed" if row["closed_at"] is not None else "open"
        text = (
            f"{authority.value} joins the {state} joint inspection (requested by "
            f"{', '.join(requested)}): one inspection covers both"
            + (", reopened for its result" if state == "completed" else "")
        )
    else:
        results = {
            **row["results"],
            authority.value: {"code": code, "info": info[:500], "at": at.isoformat()},
        }
        joint = JointInspection(
            frozenset(Authority(a) for a in row["requested_by"]),
            {Authority(a): r["code"] for a, r in results.items()},
        )
        closed = at if joint.complete else None
        repo.update_joint_inspection(conn, declaration_id, results=results, closed_at=closed)
        text = f"{authority.value} recorded its inspection result {code}" + (
            "; the joint inspection is complete" if closed else ""
        )
    repo.insert_events(
        conn,
        [
            dict(
                declaration_id=declaration_id,
                at=at,
                kind=f"inspection_{step.value}",
                source=authority.value,
                status="inspection",
                info=text,
            )
        ],
    )
