"""Read a CSV or XLSX upload into a header and rows of text, as a person saved it.

CSV comes from Excel in China as often in GBK/GB18030 as in UTF-8 (with or without a BOM):
a BOM decides; otherwise strict UTF-8, else GB18030 (a superset of GBK). Excel also drops
leading zeros and turns numbers into floats, so XLSX cells are turned back into the text a
person typed where that is unambiguous (``2`` not ``2.0``; dates as ``YYYYMMDD``).
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any

from gateway.domain.errors import UnreadableUpload, Violation
from gateway.services.archives import ArchiveLimits, open_zip

MAX_CELL_CHARS = 10_000


@dataclass(frozen=True)
class Sheet:
    """The header row and the data rows; ``rows`` pairs each row's number (1 = header, as a
    spreadsheet shows it) with its cells. Blank rows are dropped."""

    header: list[str]
    rows: list[tuple[int, list[str]]]
    encoding: str


def _refuse(code: str, detail: str, message: str) -> UnreadableUpload:
    return UnreadableUpload(detail, violations=[Violation("/", code, message)])


def decode_csv(body: bytes) -> tuple[str, str]:
    """The text of a CSV upload and the encoding it was in."""
    if body.startswith(b"\xef\xbb\xbf"):
        candidates = [("utf-8-sig", body[3:], "utf-8")]
    elif body.startswith((b"\xff\xfe", b"\xfe\xff")):
        candidates = [("utf-16", body, "utf-16")]
    else:
        candidates = [("utf-8", body, "utf-8"), ("gb18030", body, "gb18030")]
    for name, data, codec in candidates:
        try:
            return data.decode(codec), name
        except UnicodeDecodeError:
            continue
    raise _refuse(
        "csv.encoding",
        f"The CSV is not valid {' or '.join(c[0] for c in candidates)}.",
        "save the CSV as UTF-8, or as Excel's 'CSV' on Chinese Windows (GBK)",
    )


def _delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", "\t", ";")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ","


def _blank(cells: list[str]) -> bool:
    return not any(c.strip() for c in cells)


def read_csv(body: bytes, max_rows: int) -> Sheet:
    """A CSV upload (comma, tab or semicolon separated) as a Sheet."""
    text, encoding = decode_csv(body)
    if "\x00" in text:
        raise _refuse("csv.binary", "The CSV contains NUL characters.", "not a text file")
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=_delimiter(text[:4096]))
    rows: list[tuple[int, list[str]]] = []
    header: list[str] | None = None
    try:
        for number, cells in enumerate(reader, start=1):
            if header is None:
                header = cells
                continue
            if _blank(cells):
                continue
            if len(rows) >= max_rows:
                raise _too_many(max_rows)
            rows.append((number, [c.strip() for c in cells]))
    except csv.Error as exc:
        raise _refuse("csv.malformed", f"The CSV cannot be read: {exc}.", "malformed CSV") from None
    if header is None:
        raise _refuse("csv.empty", "The CSV is empty.", "a header row is required")
    return Sheet([h.strip() for h in header], rows, encoding)


def _too_many(max_rows: int) -> UnreadableUpload:
    return _refuse(
        "batch.too_many_rows",
        f"The spreadsheet has more than {max_rows} rows.",
        f"at most {max_rows} rows; split the file",
    )


def cell_text(value: Any, column: str = "") -> str:
    """What a person typed into an Excel cell, as text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, datetime):
        if value.time() == time(0) and not column.endswith(("appTime", "payTime")):
            return value.strftime("%Y%m%d")
        return value.strftime("%Y%m%d%H%M%S")
    if isinstance(value, date):
        return value.strftime("%Y%m%d")
    return str(value).strip()[:MAX_CELL_CHARS]


def read_xlsx(body: bytes, max_rows: int, limits: ArchiveLimits) -> Sheet:
    """The first worksheet of an XLSX upload (read-only, values not formulas) as a Sheet."""
    import openpyxl  # only bulk uploads need it

    open_zip(body, limits, "XLSX workbook").close()  # bombs and odd names first
    try:
        book = openpyxl.load_workbook(io.BytesIO(body), read_only=True, data_only=True)
    except Exception as exc:  # a damaged workbook fails anywhere inside openpyxl or zipfile
        raise _refuse(
            "xlsx.unreadable", f"The XLSX workbook cannot be read: {exc}.", "not an XLSX file"
        ) from None
    try:
        sheet = book.worksheets[0] if book.worksheets else None
        if sheet is None:
            raise _refuse("xlsx.empty", "The workbook has no worksheet.", "no worksheet")
        header: list[str] | None = None
        rows: list[tuple[int, list[str]]] = []
        for number, values in enumerate(sheet.iter_rows(values_only=True), start=1):
            if header is None:
                header = [cell_text(v) for v in values]
                while header and not header[-1]:
                    header.pop()
                continue
            cells = [
                cell_text(v, header[i] if i < len(header) else "") for i, v in enumerate(values)
            ]
            if _blank(cells):
                continue
            if len(rows) >= max_rows:
                raise _too_many(max_rows)
            rows.append((number, cells))
    except UnreadableUpload:
        raise
    except Exception as exc:  # openpyxl raises many types on a damaged sheet
        raise _refuse(
            "xlsx.unreadable", f"The worksheet cannot be read: {exc}.", "damaged worksheet"
        ) from None
    finally:
        book.close()
    if not header:
        raise _refuse("xlsx.empty", "The first worksheet is empty.", "a header row is required")
    return Sheet(header, rows, "xlsx")
