"""Spreadsheet rows -> CEB documents as JSON, and the answer for a document back onto its
rows and columns.

A document becomes the JSON form of a one-document message (gateway/xml/json_codec.py) and
is declared exactly like a JSON submission, so the schema, the rules and declare-once judge
it; only the paths of what they find are translated to ``row 8, column qty``.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from gateway.domain.errors import Violation
from gateway.services.sheets import Sheet
from gateway.services.templates import GROUP_BY, Template

CHINA = timezone(timedelta(hours=8))
# Guids derived from (batch, item): processing a batch again yields the same documents.
_GUID_NS = uuid.UUID("6f1c2a9e-3b57-4d0e-9a41-8c2f5e7d1b03")


@dataclass
class SheetDocument:
    """One document's rows: its head (from the first row), its goods lines, and what is
    wrong with the rows before any schema sees them."""

    rows: list[int]
    head: dict[str, str]
    transfer: dict[str, str]
    lines: list[dict[str, str]] = field(default_factory=list)
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def name(self) -> str:
        first, last = self.rows[0], self.rows[-1]
        return f"row {first}" if len(self.rows) == 1 else f"rows {first}-{last}"


def cell_error(
    row: int, column: str | None, code: str, message: str, **more: Any
) -> dict[str, Any]:
    """One entry of an item's ``errors``: the row, the column and the reason."""
    out: dict[str, Any] = {"row": row, "column": column, "code": code, "message": message}
    out.update({k: v for k, v in more.items() if v is not None})
    return out


def _cells(
    template: Template, header: list[str], number: int, cells: list[str]
) -> tuple[dict[str, dict[str, str]], list[dict[str, Any]]]:
    parts: dict[str, dict[str, str]] = {"head": {}, "line": {}, "transfer": {}}
    errors = []
    columns = template.by_name
    for i, value in enumerate(cells):
        if i >= len(header) or not header[i]:
            if value:
                errors.append(
                    cell_error(
                        number,
                        None,
                        "batch.cell_without_header",
                        f"cell {i + 1} has a value but no column header",
                        value=value,
                    )
                )
            continue
        column = columns[header[i]]
        if value:
            parts[column.part][column.element] = value
    return parts, errors


def group_rows(template: Template, sheet: Sheet) -> list[SheetDocument]:
    """The documents of a sheet: one per row, or per orderNo for templates with lines."""
    docs: list[SheetDocument] = []
    by_key: dict[str, SheetDocument] = {}
    for number, cells in sheet.rows:
        parts, errors = _cells(template, sheet.header, number, cells)
        key = parts["head"].get(GROUP_BY, "") if template.line_element else ""
        doc = by_key.get(key) if key else None
        if doc is None:
            doc = SheetDocument([number], parts["head"], parts["transfer"], errors=errors)
            docs.append(doc)
            if key:
                by_key[key] = doc
        else:
            doc.rows.append(number)
            doc.errors += errors
            for part, first in (("head", doc.head), ("transfer", doc.transfer)):
                for element, value in parts[part].items():
                    if first.get(element, value) != value:
                        column = template.column_for(part, element)
                        doc.errors.append(
                            cell_error(
                                number,
                                column,
                                "batch.head_differs",
                                # No values quoted: head fields hold buyers' personal data.
                                f"{column} differs from row {doc.rows[0]}: the rows of one "
                                f"{GROUP_BY} are one document and repeat its head fields (or "
                                "leave them blank)",
                                message_zh=f"同一{GROUP_BY}的各行为同一单证，表头字段须一致（或留空）。",
                            )
                        )
                    first.setdefault(element, value)
        if template.line_element:
            doc.lines.append(parts["line"])
    return docs


@dataclass(frozen=True)
class Defaults:
    """What the gateway fills in: derived guids, the upload time, the sender's DXP id."""

    batch_id: str
    position: int
    uploaded_at: datetime
    dxp_id: str

    def guid(self, what: str) -> str:
        return str(uuid.uuid5(_GUID_NS, f"{self.batch_id}:{self.position}:{what}")).upper()


def message_json(template: Template, doc: SheetDocument, defaults: Defaults) -> bytes:
    """The document as the JSON of a one-document message, fields in schema order."""
    spec = template.spec
    filled = {
        "guid": defaults.guid("document"),
        "appType": "1",
        "appTime": defaults.uploaded_at.astimezone(CHINA).strftime("%Y%m%d%H%M%S"),
        "appStatus": "2",
    }
    head: dict[str, str] = {}
    for c in template.columns:
        if c.part == "head":
            value = doc.head.get(c.element) or filled.get(c.element)
            if value:
                head[c.element] = value
    body: dict[str, Any] = {spec.head or "": head}
    if template.line_element:
        body[template.line_element] = [
            {
                c.element: line.get(c.element) or (str(n) if c.element == "gnum" else "")
                for c in template.columns
                if c.part == "line" and (line.get(c.element) or c.element == "gnum")
            }
            for n, line in enumerate(doc.lines, start=1)
        ]
    code_field, name_field = template.sender
    transfer = {
        "copCode": doc.transfer.get("copCode") or doc.head.get(code_field, ""),
        "copName": doc.transfer.get("copName") or doc.head.get(name_field, ""),
        "dxpMode": "DXP",
        "dxpId": doc.transfer.get("dxpId") or defaults.dxp_id,
    }
    message = {
        "@guid": defaults.guid("message"),
        "@version": "1.0",
        spec.document or "": [body],
        "BaseTransfer": transfer,
    }
    return json.dumps({spec.root: message}, ensure_ascii=False).encode("utf-8")


_SEGMENT = re.compile(r"^(@?[A-Za-z_][\w.-]*)(?:\[(\d+)\])?$")


def locate(template: Template, doc: SheetDocument, violation: Violation) -> dict[str, Any]:
    """A violation of the document's message, told as the row and column at fault."""
    row, column = doc.rows[0], None
    segments = [s for s in violation.path.split("/") if s]
    part = "message"
    for segment in segments[1:]:
        m = _SEGMENT.match(segment)
        if m is None:
            break
        name, index = m.group(1), m.group(2)
        if name == template.spec.head:
            part = "head"
        elif name == template.line_element:
            part = "line"
            n = int(index or 1)
            row = doc.rows[n - 1] if 0 < n <= len(doc.rows) else row
        elif name == "BaseTransfer":
            part = "transfer"
        elif part in ("head", "line", "transfer"):
            column = template.column_for(part, name) or (name if part == "transfer" else None)
            break
    return cell_error(
        row,
        column,
        violation.code,
        violation.message,
        path=violation.path,
        message_zh=violation.message_zh,
        value=violation.value,
    )
