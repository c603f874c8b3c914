"""Export summary declaration (汇总申报): a month's released export lists, grouped by the
public rule, declared as CEB701 applications; customs answers each with a summary result
(CEB792) carrying the entry number, kept on the application."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from lxml import etree
from sqlalchemy import select

from gateway.domain.access import Viewer
from gateway.domain.audit import Actor
from gateway.domain.errors import BusinessRuleViolation, Violation
from gateway.domain.summary import ReleasedList, build_summary_apply_fields, group_for_summary
from gateway.persistence import repository as repo
from gateway.persistence import tables as t
from gateway.persistence.visibility import visible_to
from gateway.services.declare import Accepted, declare
from gateway.services.runtime import Runtime
from gateway.xml.documents import document_elements
from gateway.xml.parsing import parse_xml
from gateway.xml.validation import detect
from schemas.registry import CEB_NS

_Q = f"{{{CEB_NS}}}"
CHINA = timedelta(hours=8)
MAX_PER_MESSAGE = 100


def _released_lists(rt: Runtime, viewer: Viewer) -> list[ReleasedList]:
    with rt.engine.connect() as conn:
        rows = (
            conn.execute(
                select(t.declarations).where(
                    visible_to(viewer),
                    t.declarations.c.type == "CEB603",
                    t.declarations.c.released_at.is_not(None),
                    t.declarations.c.status.in_(("released", "closed")),
                )
            )
            .mappings()
            .all()
        )
        messages = {r["message_id"]: repo.get_message(conn, r["message_id"]) for r in rows}
    out = []
    for row in rows:
        root = parse_xml(messages[row["message_id"]]["raw_xml"], rt.limits)
        doc = document_elements(root, detect(root))[row["position"] - 1]
        released = repo.as_utc(row["released_at"]) + CHINA  # type: ignore[operator]
        out.append(ReleasedList(row["invt_no"] or "", doc.view, released.date()))
    return [x for x in out if x.invt_no]


def build_ceb701(heads: list[dict[str, Any]], transfer: dict[str, str]) -> bytes:
    """A CEB701 message of up to 100 summary applications (head + invtNo lines)."""
    root = etree.Element(
        f"{_Q}CEB701Message", nsmap={"ceb": CEB_NS}, guid=str(uuid.uuid4()).upper(), version="1.0"
    )
    for fields in heads:
        apply = etree.SubElement(root, f"{_Q}SummaryApply")
        head = etree.SubElement(apply, f"{_Q}SummaryApplyHead")
        for name, value in fields["head"].items():
            etree.SubElement(head, f"{_Q}{name}").text = value
        for line in fields["lists"]:
            el = etree.SubElement(apply, f"{_Q}SummaryApplyList")
            for name, value in line.items():
                etree.SubElement(el, f"{_Q}{name}").text = value
    base = etree.SubElement(root, f"{_Q}BaseTransfer")
    for name in ("copCode", "copName", "dxpMode", "dxpId"):
        etree.SubElement(base, f"{_Q}{name}").text = transfer[name]
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def declare_month(
    rt: Runtime,
    org_id: str,
    month: str,
    transfer: dict[str, str],
    viewer: Viewer | None = None,
    *,
    actor: Actor | None = None,
) -> list[Accepted]:
    """Group the lists released in ``month`` that the viewer sees (by default: those the org
    submitted) and declare the CEB701 applications as ``org_id``."""
    try:
        groups = group_for_summary(_released_lists(rt, viewer or Viewer(org_id)), month)
    except ValueError as exc:
        raise BusinessRuleViolation(
            str(exc), violations=[Violation("/month", "summary.month", str(exc))]
        ) from None
    if not groups:
        raise BusinessRuleViolation(
            f"No released export inventory list in {month} to summarise.",
            violations=[Violation("/month", "summary.empty", "nothing released that month")],
        )
    now = datetime.now(UTC) + CHINA
    heads = [
        build_summary_apply_fields(
            g,
            guid=str(uuid.uuid4()).upper(),
            app_time=now.strftime("%Y%m%d%H%M%S"),
            cop_no=f"SUM{month.replace('-', '')}{uuid.uuid4().hex[:8].upper()}",
        )
        for g in groups
    ]
    return [
        declare(
            rt,
            org_id,
            build_ceb701(heads[i : i + MAX_PER_MESSAGE], transfer),
            "application/xml",
            actor=actor,
            action="summary.submitted",
        )
        for i in range(0, len(heads), MAX_PER_MESSAGE)
    ]
