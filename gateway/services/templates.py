"""Spreadsheet templates for bulk declaration: one per document type, columns from our
schemas (schemas/ceb), so a spreadsheet row means exactly what a JSON field means.

Columns are the CEB field names of the head (``orderNo``, ``ebpCode`` …), then of the goods
lines (``gnum``, ``qty`` …), then the sender (``copCode``, ``copName``, ``dxpId``). A line
field whose name the head also has is prefixed by its element: ``InventoryList.currency``.
``guid``, ``appType``, ``appTime``, ``appStatus`` and the sender columns may be left out:
the gateway fills them in (a guid derived from the batch and item, so a retry is the same
document; appType 1; appTime when uploaded; appStatus 2; the sender from the head's party).

Documents with goods lines (order CEB311, inventory list CEB621) take one row per line, the
head fields repeated: **rows with the same orderNo are one document** (一单一清单: an
inventory list belongs to one order), in the order their first rows appear. A head cell left
blank on a later row of a document repeats the first row's value; a different value is an
error of that row.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from gateway.domain.errors import TemplateMismatch, Violation
from gateway.xml.json_codec import _codec
from schemas.registry import MessageSpec, get_spec

# type -> (alias, head fields that name the sender: code, name)
_TEMPLATES: dict[str, tuple[str, str, str]] = {
    "CEB311": ("order", "ebpCode", "ebpName"),
    "CEB411": ("payment", "payCode", "payName"),
    "CEB511": ("waybill", "logisticsCode", "logisticsName"),
    "CEB621": ("inventory", "agentCode", "agentName"),
}
DEFAULTED = frozenset({"guid", "appType", "appTime", "appStatus"})
TRANSFER_COLUMNS = ("copCode", "copName", "dxpId")
GROUP_BY = "orderNo"


@dataclass(frozen=True)
class Column:
    """One column: its header, where it goes (head, line or transfer) and whether the
    header row must have it."""

    name: str
    part: str  # head | line | transfer
    element: str
    required: bool


@dataclass(frozen=True)
class Template:
    """A document type as a spreadsheet."""

    type: str
    alias: str
    spec: MessageSpec
    line_element: str | None  # OrderList / InventoryList, or None
    columns: tuple[Column, ...]
    sender: tuple[str, str]

    @property
    def by_name(self) -> dict[str, Column]:
        return {c.name: c for c in self.columns}

    def column_for(self, part: str, element: str) -> str | None:
        """The header of the column that fills ``element`` of ``part``."""
        for c in self.columns:
            if c.part == part and c.element == element:
                return c.name
        return None

    @property
    def title(self) -> str:
        return self.spec.title


def _children(element: object) -> list[tuple[str, bool]]:
    content = element.type.content  # type: ignore[attr-defined]
    return [(c.local_name, c.min_occurs > 0) for c in content.iter_elements()]


@functools.cache
def get_template(name: str) -> Template:
    """The template by message type (CEB621) or alias (inventory); TemplateMismatch if none."""
    key = next((t for t, row in _TEMPLATES.items() if name in (t, row[0])), None)
    if key is None:
        raise TemplateMismatch(
            f"There is no template {name!r}.",
            violations=[
                Violation(
                    "?template",
                    "batch.unknown_template",
                    "one of " + ", ".join(f"{t} ({r[0]})" for t, r in _TEMPLATES.items()),
                    value=name,
                )
            ],
        )
    alias, code_field, name_field = _TEMPLATES[key]
    spec = get_spec(key)
    schema = _codec(spec)
    root = schema.elements[spec.root]
    doc = next(c for c in root.type.content.iter_elements() if c.local_name == spec.document)
    parts = {c.local_name: c for c in doc.type.content.iter_elements()}
    head = [(n, r and n not in DEFAULTED) for n, r in _children(parts[spec.head])]
    line_element = next((n for n in parts if n != spec.head), None)
    lines = _children(parts[line_element]) if line_element else []
    head_names = {n for n, _ in head}
    columns = [Column(n, "head", n, r) for n, r in head]
    columns += [
        Column(f"{line_element}.{n}" if n in head_names else n, "line", n, r and n != "gnum")
        for n, r in lines
    ]
    columns += [Column(n, "transfer", n, False) for n in TRANSFER_COLUMNS]
    return Template(key, alias, spec, line_element, tuple(columns), (code_field, name_field))


def all_templates() -> list[Template]:
    return [get_template(t) for t in _TEMPLATES]


def _fit(template: Template, header: list[str]) -> tuple[list[str], list[str]]:
    """(missing required columns, unknown columns) of a header against a template."""
    names = template.by_name
    missing = [c.name for c in template.columns if c.required and c.name not in header]
    unknown = [h for h in header if h and h not in names]
    return missing, unknown


def _mismatch(template: Template, missing: list[str], unknown: list[str]) -> TemplateMismatch:
    violations = [
        Violation(
            f"/header/{m}",
            "batch.missing_column",
            f"missing column header {m} (required by the {template.type} template)",
        )
        for m in missing
    ] + [
        Violation(
            f"/header/{u}",
            "batch.unknown_column",
            f"column header {u!r} is not a field of the {template.type} template",
            value=u,
        )
        for u in unknown
    ]
    what = ", ".join(
        ([f"missing column header {missing[0]}"] if missing else [])
        + ([f"unknown column header {unknown[0]!r}"] if unknown else [])
    )
    return TemplateMismatch(
        f"The header row does not fit the {template.type} ({template.alias}) template: {what}"
        + (f" and {len(violations) - 1} more." if len(violations) > 1 else "."),
        violations=violations,
        extra={"template": template.type},
    )


def match_template(header: list[str], name: str | None) -> Template:
    """The template a header row fits: the one named, else the one it fits exactly."""
    duplicated = sorted({h for h in header if h and header.count(h) > 1})
    if duplicated:
        raise TemplateMismatch(
            f"The header row names column {duplicated[0]} more than once.",
            violations=[
                Violation(f"/header/{d}", "batch.duplicate_column", "a column appears twice")
                for d in duplicated
            ],
        )
    if name:
        template = get_template(name)
        missing, unknown = _fit(template, header)
        if missing or unknown:
            raise _mismatch(template, missing, unknown)
        return template
    fits = [(t, *_fit(t, header)) for t in all_templates()]
    exact = [t for t, missing, unknown in fits if not missing and not unknown]
    if len(exact) == 1:
        return exact[0]
    # Say what is wrong against the template the header is closest to.
    best, missing, unknown = min(fits, key=lambda f: (len(f[2]), len(f[1])))
    raise _mismatch(best, missing, unknown)
