"""The downloadable templates: a header row of the template's columns and example rows taken
from the shipped examples (examples/CEB*.xml), as CSV or XLSX."""

from __future__ import annotations

import csv
import functools
import io
from collections.abc import Callable
from typing import Any

from lxml import etree

from gateway.services.templates import DEFAULTED, Template, all_templates
from gateway.settings import PROJECT_ROOT
from schemas.registry import CEB_NS

_Q = f"{{{CEB_NS}}}"


def _fields(element: etree._Element | None) -> dict[str, str]:
    if element is None:
        return {}
    return {
        etree.QName(c).localname: (c.text or "").strip() for c in element if isinstance(c.tag, str)
    }


@functools.cache
def example_rows(template: Template) -> tuple[tuple[str, ...], ...]:
    """The example document as rows: one per goods line, the head repeated; guid blank so a
    copy is never a duplicate of another copy's document."""
    root = etree.parse(str(PROJECT_ROOT / "examples" / f"{template.type}.xml")).getroot()
    doc = root.find(f"{_Q}{template.spec.document}")
    assert doc is not None
    head = _fields(doc.find(f"{_Q}{template.spec.head}"))
    transfer = _fields(root.find(f"{_Q}BaseTransfer"))
    lines = (
        [_fields(x) for x in doc.iterfind(f"{_Q}{template.line_element}")]
        if template.line_element
        else [{}]
    )
    rows = []
    for line in lines:
        source = {"head": head, "line": line, "transfer": transfer}
        rows.append(
            tuple(
                "" if _filled_in(c) else source[c.part].get(c.element, "") for c in template.columns
            )
        )
    return tuple(rows)


def _filled_in(c: Any) -> bool:
    """Left blank in the examples: the guid (each copy a new document) and the sender (the
    uploading organisation's own DXP id is the one the authorities know)."""
    return c.part == "transfer" or (c.part == "head" and c.element == "guid")


def template_csv(template: Template) -> bytes:
    """UTF-8 with a BOM: Excel then opens the Chinese example text correctly."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([c.name for c in template.columns])
    writer.writerows(example_rows(template))
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def template_xlsx(template: Template) -> bytes:
    """The template as a workbook: every cell formatted as text (codes like 035 keep their
    zeros), required columns in bold, and a second sheet describing each column."""
    import openpyxl
    from openpyxl.styles import Font

    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = template.type
    sheet.append([c.name for c in template.columns])
    for row in example_rows(template):
        sheet.append(list(row))
    for i, column in enumerate(template.columns, start=1):
        letter = openpyxl.utils.get_column_letter(i)
        sheet.column_dimensions[letter].width = max(10, len(column.name) + 2)
        sheet.column_dimensions[letter].number_format = "@"
        for cell in sheet[letter]:
            cell.number_format = "@"
        if column.required:
            sheet.cell(row=1, column=i).font = Font(bold=True)
    about = book.create_sheet("columns")
    about.append(["column", "required", "element", "note"])
    for c in template.columns:
        about.append([c.name, "yes" if c.required else "no", _element_path(template, c), _note(c)])
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _element_path(template: Template, c: Any) -> str:
    parent = {
        "head": template.spec.head,
        "line": template.line_element,
        "transfer": "BaseTransfer",
    }[c.part]
    return f"{template.spec.root}/{template.spec.document}/{parent}/{c.element}".replace(
        f"/{template.spec.document}/BaseTransfer", "/BaseTransfer"
    )


def _note(c: Any) -> str:
    if c.part == "head" and c.element in DEFAULTED:
        return "may be left blank: the gateway fills it in"
    if c.part == "transfer":
        return "may be left blank: the head's party and your organisation's DXP id"
    if c.element == "gnum":
        return "may be left blank: the line's number within its document"
    return ""


def templates_index(link: Callable[[str, str], str]) -> list[dict[str, Any]]:
    """Every template with its columns, for GET /api/v1/templates."""
    return [
        {
            "name": t.type,
            "alias": t.alias,
            "title": t.title,
            "group_by": "orderNo" if t.line_element else None,
            "columns": [
                {"name": c.name, "required": c.required, "part": c.part} for c in t.columns
            ],
            "links": {"csv": link(t.type, "csv"), "xlsx": link(t.type, "xlsx")},
        }
        for t in all_templates()
    ]
