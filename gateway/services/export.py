"""The operator's export of declarations (CSV or JSON lines), free of personal data.

Only columns the gateway keeps outside the messages are exported: numbers, statuses, times
and tax totals. Buyer identities live only inside the stored messages, so an export cannot
leak them; the buyer key is an HMAC and is left out too.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from typing import Any

from gateway.persistence import repository as repo

COLUMNS = (
    "id",
    "type",
    "status",
    "org_name",
    "order_no",
    "logistics_no",
    "cop_no",
    "pre_no",
    "invt_no",
    "customs",
    "inspection",
    "tax_estimate",
    "tax_bill",
    "created_at",
    "released_at",
    "gate_out_at",
)


def _iso(value: Any) -> str:
    value = repo.as_utc(value)
    return value.isoformat().replace("+00:00", "Z") if value is not None else ""


def export_row(row: dict[str, Any]) -> dict[str, str]:
    """One declaration as flat text columns (COLUMNS)."""
    tax = row.get("tax") or {}
    authorities = row.get("authorities") or {}
    return {
        "id": row["id"],
        "type": row["type"],
        "status": row["status"],
        "org_name": row.get("org_name") or "",
        "order_no": row["order_no"] or "",
        "logistics_no": row["logistics_no"] or "",
        "cop_no": row["cop_no"] or "",
        "pre_no": row["pre_no"] or "",
        "invt_no": row["invt_no"] or "",
        "customs": authorities.get("customs") or "",
        "inspection": authorities.get("inspection") or "",
        "tax_estimate": (tax.get("estimate") or {}).get("total", ""),
        "tax_bill": (tax.get("bill") or {}).get("total", ""),
        "created_at": _iso(row["created_at"]),
        "released_at": _iso(row["released_at"]),
        "gate_out_at": _iso(row["gate_out_at"]),
    }


def render(rows: Iterable[dict[str, Any]], fmt: str) -> Iterator[str]:
    """Chunks of the export in ``fmt`` ("csv" with a header row, or "jsonl")."""
    if fmt == "jsonl":
        for row in rows:
            yield json.dumps(export_row(row), ensure_ascii=False) + "\n"
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow(export_row(row))
        if buf.tell() > 65536:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()
