"""What a bulk upload holds: its kind (ZIP of messages, CSV or XLSX per template) and its
items, read the same way at upload (to refuse a bad file at once and count the items) and
in the job (to declare them), so item N is always the same document.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass

from gateway.domain.errors import (
    PayloadTooLarge,
    UnreadableUpload,
    UnsupportedMediaType,
    Violation,
)
from gateway.services.archives import ArchiveLimits, ignored, is_zip, open_zip, read_member
from gateway.services.sheet_documents import SheetDocument, group_rows
from gateway.services.sheets import read_csv, read_xlsx
from gateway.services.templates import Template, match_template

XLSX_MEDIA = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ZIP_MEDIA = {"application/zip", "application/x-zip-compressed", "application/x-zip"}
CSV_MEDIA = {"text/csv", "application/csv", "text/plain", "text/tab-separated-values"}
ANY_MEDIA = {"", "application/octet-stream"}
MESSAGE_SUFFIXES = (".xml", ".json")
# The media type that makes upload_kind() answer the kind again (for the job's re-read).
KIND_MEDIA = {"zip": "application/zip", "csv": "text/csv", "xlsx": XLSX_MEDIA}


@dataclass(frozen=True)
class BatchLimits:
    """How big an upload may be, in items, and once unpacked; each item as a body."""

    max_items: int
    max_uncompressed: int
    max_item_bytes: int

    @property
    def archive(self) -> ArchiveLimits:
        return ArchiveLimits(self.max_items, self.max_uncompressed)


@dataclass(frozen=True)
class UploadItem:
    """One future declaration (or message): a ZIP member or a spreadsheet document."""

    position: int
    name: str
    rows: list[int] | None
    member: zipfile.ZipInfo | None = None
    document: SheetDocument | None = None


@dataclass
class Upload:
    kind: str  # zip | csv | xlsx
    template: Template | None
    items: list[UploadItem]
    archive: zipfile.ZipFile | None = None
    encoding: str | None = None


def _is_xlsx(body: bytes) -> bool:
    return is_zip(body) and b"xl/workbook.xml" in body[-65536:]


def upload_kind(body: bytes, content_type: str, filename: str) -> str:
    """zip, csv or xlsx, from the bytes first and the declared type second."""
    media = content_type.split(";")[0].strip().lower()
    name = filename.lower()
    if is_zip(body):
        if media == XLSX_MEDIA or name.endswith(".xlsx") or _is_xlsx(body):
            return "xlsx"
        return "zip"
    if media in ZIP_MEDIA or name.endswith(".zip"):
        raise UnreadableUpload(
            "The upload is not a ZIP archive (it does not start with PK\\x03\\x04).",
            violations=[Violation("/", "batch.not_a_zip", "not a ZIP file")],
        )
    if media == XLSX_MEDIA or name.endswith(".xlsx"):
        raise UnreadableUpload(
            "The upload is not an XLSX workbook.",
            violations=[Violation("/", "xlsx.unreadable", "not an XLSX file (Excel 2007+)")],
        )
    if media in CSV_MEDIA or media in ANY_MEDIA or name.endswith((".csv", ".txt")):
        return "csv"
    raise UnsupportedMediaType(
        f"Content-Type {media} is not a bulk upload: send a ZIP of XML/JSON messages "
        "(application/zip), a CSV (text/csv) or an XLSX workbook per document template; "
        "for one message use POST /api/v1/declarations.",
        violations=[
            Violation("/", "media_type.unsupported", "use application/zip, text/csv or xlsx")
        ],
    )


def _zip_items(archive: zipfile.ZipFile, max_items: int) -> list[UploadItem]:
    members = [m for m in archive.infolist() if not ignored(m.filename)]
    if not members:
        raise UnreadableUpload(
            "The ZIP archive holds no files.",
            violations=[Violation("/", "batch.empty", "no .xml or .json file in the archive")],
        )
    if len(members) > max_items:
        raise _too_many(len(members), max_items)
    return [UploadItem(i, m.filename, None, member=m) for i, m in enumerate(members, start=1)]


def _too_many(count: int, max_items: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload holds {count} items; the limit is {max_items}.",
        violations=[Violation("/", "batch.too_many_items", f"at most {max_items} per upload")],
    )


def read_upload(
    body: bytes, content_type: str, filename: str, template: str | None, limits: BatchLimits
) -> Upload:
    """Every item of an upload, or the GatewayError that refuses the whole upload."""
    kind = upload_kind(body, content_type, filename)
    if kind == "zip":
        archive = open_zip(body, limits.archive)
        return Upload("zip", None, _zip_items(archive, limits.max_items), archive=archive)
    max_rows = limits.max_items * 10
    sheet = (
        read_xlsx(body, max_rows, limits.archive) if kind == "xlsx" else read_csv(body, max_rows)
    )
    chosen = match_template(sheet.header, template)
    docs = group_rows(chosen, sheet)
    if not docs:
        raise UnreadableUpload(
            "The spreadsheet has a header row but no data rows.",
            violations=[Violation("/", "batch.empty", "add one row per document (or goods line)")],
        )
    if len(docs) > limits.max_items:
        raise _too_many(len(docs), limits.max_items)
    items = [UploadItem(i, d.name, d.rows, document=d) for i, d in enumerate(docs, start=1)]
    return Upload(kind, chosen, items, encoding=sheet.encoding)


def member_body(upload: Upload, item: UploadItem, limits: BatchLimits) -> tuple[bytes, str]:
    """A ZIP member's bytes and media type; a GatewayError makes it a rejected item."""
    assert upload.archive is not None and item.member is not None
    info = item.member
    if not info.filename.lower().endswith(MESSAGE_SUFFIXES):
        raise UnsupportedMediaType(
            f"{info.filename} is neither .xml nor .json.",
            violations=[
                Violation("/", "batch.file_type", "only .xml and .json files are declared")
            ],
        )
    if info.file_size > limits.max_item_bytes:
        raise PayloadTooLarge(
            f"{info.filename} is {info.file_size} bytes uncompressed; the limit is "
            f"{limits.max_item_bytes}.",
            violations=[Violation("/", "xml.too_large", "document exceeds the size limit")],
        )
    data = read_member(upload.archive, info, limits.max_item_bytes)
    media = "application/json" if info.filename.lower().endswith(".json") else "application/xml"
    return data, media
