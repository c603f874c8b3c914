"""Reading bulk uploads: CSV encodings, XLSX cells, header rows against templates, rows
grouped into documents, and ZIPs that would hurt (bombs, traversal) refused before reading."""

from __future__ import annotations

import csv
import io
import json
import zipfile
from datetime import datetime

import openpyxl
import pytest

from gateway.domain.errors import (
    PayloadTooLarge,
    TemplateMismatch,
    UnreadableUpload,
    UnsupportedMediaType,
    Violation,
)
from gateway.services.archives import ArchiveLimits, open_zip, read_member
from gateway.services.batch_reader import BatchLimits, member_body, read_upload
from gateway.services.sheet_documents import Defaults, locate, message_json
from gateway.services.sheets import cell_text, decode_csv, read_csv, read_xlsx
from gateway.services.template_files import example_rows, template_csv, template_xlsx
from gateway.services.templates import get_template, match_template

LIMITS = BatchLimits(max_items=50, max_uncompressed=10 << 20, max_item_bytes=1 << 20)
CHINESE = "示例物流企业"


def _waybill_csv(encoding: str = "utf-8", bom: bool = False) -> bytes:
    t = get_template("CEB511")
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([c.name for c in t.columns])
    writer.writerows(example_rows(t))
    return (b"\xef\xbb\xbf" if bom else b"") + out.getvalue().encode(encoding)


def _zip(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("encoding", "bom", "expected"),
    [("utf-8", False, "utf-8"), ("utf-8", True, "utf-8-sig"), ("gbk", False, "gb18030")],
)
def test_csv_in_utf8_with_or_without_bom_or_gbk_reads_the_same(encoding, bom, expected):
    upload = read_upload(_waybill_csv(encoding, bom), "text/csv", "w.csv", None, LIMITS)
    assert upload.encoding == expected
    assert upload.template is not None and upload.template.type == "CEB511"
    doc = upload.items[0].document
    assert doc is not None and doc.head["logisticsName"] == CHINESE


def test_gb18030_characters_outside_gbk_are_read():
    text, encoding = decode_csv("a\r\n𠀀\r\n".encode("gb18030"))
    assert encoding == "gb18030" and "𠀀" in text


def test_a_csv_in_no_known_encoding_is_refused_naming_the_encoding():
    with pytest.raises(UnreadableUpload) as err:
        decode_csv(b"\xef\xbb\xbforderNo\xff\xff")
    assert err.value.violations[0].code == "csv.encoding"


def test_tab_separated_and_blank_rows_are_read():
    sheet = read_csv(b"a\tb\r\n1\t2\r\n\t\r\n3\t4\r\n", 10)
    assert sheet.header == ["a", "b"]
    assert sheet.rows == [(2, ["1", "2"]), (4, ["3", "4"])]


def test_a_header_missing_a_required_column_names_it():
    t = get_template("CEB511")
    header = [c.name for c in t.columns if c.name != "weight"]
    with pytest.raises(TemplateMismatch) as err:
        match_template(header, "waybill")
    assert err.value.status == 422
    assert "missing column header weight" in err.value.detail
    assert [v.code for v in err.value.violations] == ["batch.missing_column"]


def test_an_unknown_or_repeated_column_is_refused():
    header = [c.name for c in get_template("CEB411").columns] + ["qtty"]
    with pytest.raises(TemplateMismatch) as err:
        match_template(header, None)
    assert err.value.violations[0].code == "batch.unknown_column"
    assert err.value.violations[0].value == "qtty"
    with pytest.raises(TemplateMismatch) as err:
        match_template(["orderNo", "orderNo"], None)
    assert err.value.violations[0].code == "batch.duplicate_column"


def test_the_template_is_chosen_by_the_header_when_not_named():
    for name in ("CEB311", "CEB411", "CEB511", "CEB621"):
        header = [c.name for c in get_template(name).columns if c.required]
        assert match_template(header, None).type == name


def test_an_unknown_template_name_is_refused():
    with pytest.raises(TemplateMismatch) as err:
        get_template("CEB999")
    assert err.value.violations[0].code == "batch.unknown_template"


def test_line_columns_that_the_head_also_has_are_prefixed():
    names = [c.name for c in get_template("CEB621").columns]
    assert "currency" in names and "InventoryList.currency" in names
    assert "qty" in names and "InventoryList.qty" not in names


def _inventory_sheet(rows: list[dict[str, str]]) -> tuple[list[str], bytes]:
    t = get_template("CEB621")
    header = [c.name for c in t.columns]
    base = dict(zip(header, example_rows(t)[0], strict=True))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(header)
    for changes in rows:
        writer.writerow([{**base, **changes}[h] for h in header])
    return header, out.getvalue().encode()


def test_rows_with_the_same_order_no_are_one_document_and_blank_head_cells_repeat():
    _h, body = _inventory_sheet(
        [
            {"orderNo": "A", "gnum": "1"},
            {"orderNo": "B", "gnum": "1"},
            {"orderNo": "A", "gnum": "2", "buyerName": ""},
        ]
    )
    upload = read_upload(body, "text/csv", "", "CEB621", LIMITS)
    docs = [i.document for i in upload.items]
    assert [(d.rows, d.name) for d in docs if d] == [([2, 4], "rows 2-4"), ([3], "row 3")]
    assert docs[0] is not None and not docs[0].errors and len(docs[0].lines) == 2


def test_a_head_cell_that_differs_within_a_document_is_an_error_of_that_row():
    _h, body = _inventory_sheet(
        [{"orderNo": "A"}, {"orderNo": "A", "gnum": "2", "buyerName": "李四"}]
    )
    doc = read_upload(body, "text/csv", "", None, LIMITS).items[0].document
    assert doc is not None
    assert [(e["row"], e["column"], e["code"]) for e in doc.errors] == [
        (3, "buyerName", "batch.head_differs")
    ]


def test_a_document_becomes_json_with_derived_guids_and_defaults():
    t = get_template("CEB621")
    _h, body = _inventory_sheet([{"orderNo": "A"}, {"orderNo": "A", "gnum": ""}])
    doc = read_upload(body, "text/csv", "", None, LIMITS).items[0].document
    assert doc is not None
    defaults = Defaults("bat_x", 1, datetime(2026, 12, 1, 2, 0, 0).astimezone(), "DXPENT01")
    message = json.loads(message_json(t, doc, defaults))["CEB621Message"]
    head = message["Inventory"][0]["InventoryHead"]
    assert list(head)[:4] == ["guid", "appType", "appTime", "appStatus"]
    assert head["guid"] == defaults.guid("document") and len(head["guid"]) == 36
    assert [line["gnum"] for line in message["Inventory"][0]["InventoryList"]] == ["1", "2"]
    assert message["BaseTransfer"] == {
        "copCode": "1105910159",
        "copName": "示例报关企业",
        "dxpMode": "DXP",
        "dxpId": "DXPENT01",
    }
    assert message_json(t, doc, defaults) == message_json(t, doc, defaults)


def test_a_violation_is_told_as_its_row_and_column():
    t = get_template("CEB621")
    _h, body = _inventory_sheet([{"orderNo": "A"}, {"orderNo": "A", "gnum": "2"}])
    doc = read_upload(body, "text/csv", "", None, LIMITS).items[0].document
    assert doc is not None
    line = Violation("/CEB621Message/Inventory[1]/InventoryList[2]/currency", "c", "m")
    head = Violation("/CEB621Message/Inventory[1]/InventoryHead/currency", "c", "m")
    sender = Violation("/CEB621Message/BaseTransfer/dxpId", "c", "m")
    assert (locate(t, doc, line)["row"], locate(t, doc, line)["column"]) == (
        3,
        "InventoryList.currency",
    )
    assert (locate(t, doc, head)["row"], locate(t, doc, head)["column"]) == (2, "currency")
    assert locate(t, doc, sender)["column"] == "dxpId"


def test_xlsx_cells_come_back_as_the_text_a_person_typed():
    assert cell_text(2.0) == "2"
    assert cell_text(198.5) == "198.5"
    assert cell_text(datetime(2026, 11, 23), "declTime") == "20261123"
    assert cell_text(datetime(2026, 11, 23, 9, 30, 12), "payTime") == "20261123093012"
    assert cell_text(None) == ""


def test_an_xlsx_with_numbers_and_dates_reads_as_text():
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["qty", "declTime", "name"])
    sheet.append([2, datetime(2026, 11, 23), CHINESE])
    sheet.append([None, None, None])
    out = io.BytesIO()
    book.save(out)
    read = read_xlsx(out.getvalue(), 10, LIMITS.archive)
    assert read.header == ["qty", "declTime", "name"]
    assert read.rows == [(2, ["2", "20261123", CHINESE])]


def test_the_template_files_have_the_header_and_example_rows():
    t = get_template("CEB621")
    text = template_csv(t).decode("utf-8")
    assert text.startswith("\ufeffguid,appType,")
    assert text.count("\r\n") == 3  # header and two goods lines
    upload = read_upload(template_xlsx(t), "", "t.xlsx", None, LIMITS)
    assert upload.kind == "xlsx" and upload.template == t and len(upload.items) == 1


def test_a_zip_bomb_is_refused_before_it_is_inflated():
    body = _zip({"bomb.xml": b"\0" * (8 << 20)})
    assert len(body) < 20_000
    with pytest.raises(UnreadableUpload) as err:
        read_upload(body, "application/zip", "", None, LIMITS)
    assert err.value.violations[0].code == "zip.bomb"


def test_a_zip_over_the_unpacked_limit_is_413():
    limits = BatchLimits(max_items=50, max_uncompressed=1000, max_item_bytes=1 << 20)
    with pytest.raises(PayloadTooLarge) as err:
        read_upload(_zip({"a.xml": b"x" * 600, "b.xml": b"y" * 600}), "", "", None, limits)
    assert err.value.violations[0].code == "zip.too_large"


@pytest.mark.parametrize("name", ["../evil.xml", "/etc/passwd", "a/../../b.xml", "C:/x.xml"])
def test_a_name_that_escapes_the_archive_is_refused(name):
    with pytest.raises(UnreadableUpload) as err:
        read_upload(_zip({name: b"<x/>"}), "application/zip", "", None, LIMITS)
    assert err.value.violations[0].code == "zip.unsafe_path"


def test_too_many_items_is_413():
    body = _zip({f"{i}.xml": b"<x/>" for i in range(51)})
    with pytest.raises(PayloadTooLarge):
        read_upload(body, "application/zip", "", None, LIMITS)


def test_a_member_whose_header_understates_its_size_is_not_read_past_it():
    body = bytearray(_zip({"a.xml": b"<x>" + b"a" * 100 + b"</x>"}, zipfile.ZIP_STORED))
    archive = open_zip(bytes(body), ArchiveLimits(10, 1 << 20))
    info = archive.infolist()[0]
    info.file_size = 10  # a lying header
    with pytest.raises(UnreadableUpload) as err:
        read_member(archive, info, 1 << 20)
    # zipfile stops at the declared size, and then the CRC no longer matches
    assert err.value.violations[0].code in ("zip.size_mismatch", "zip.corrupt")


def test_non_message_files_are_items_refused_on_their_own():
    upload = read_upload(_zip({"a.xml": b"<x/>", "b.pdf": b"%PDF"}), "", "", None, LIMITS)
    assert [i.name for i in upload.items] == ["a.xml", "b.pdf"]
    assert member_body(upload, upload.items[0], LIMITS) == (b"<x/>", "application/xml")
    with pytest.raises(UnsupportedMediaType):
        member_body(upload, upload.items[1], LIMITS)


@pytest.mark.parametrize(
    ("body", "content_type", "code"),
    [
        (b"not a zip", "application/zip", "batch.not_a_zip"),
        (b"PK\x03\x04garbage", "application/zip", "batch.not_a_zip"),
        (
            b"nope",
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            "xlsx.unreadable",
        ),
        (_zip({"__MACOSX/._a.xml": b"x"}), "application/zip", "batch.empty"),
        (b"guid,orderNo\r\n", "text/csv", "batch.missing_column"),
    ],
)
def test_bad_uploads_name_their_reason(body, content_type, code):
    with pytest.raises((UnreadableUpload, TemplateMismatch)) as err:
        read_upload(body, content_type, "", None, LIMITS)
    assert err.value.violations[0].code == code


def test_a_spreadsheet_with_a_header_but_no_rows_is_refused():
    header = ",".join(c.name for c in get_template("CEB411").columns if c.required)
    with pytest.raises(UnreadableUpload) as err:
        read_upload(header.encode() + b"\r\n", "text/csv", "", None, LIMITS)
    assert err.value.violations[0].code == "batch.empty"


def test_a_batch_is_cut_into_at_most_sixteen_chunks_of_at_least_250_items():
    from gateway.services.batch import plan_chunks

    assert plan_chunks(1) == [(1, 1)]
    assert plan_chunks(250) == [(1, 250)]
    assert plan_chunks(251) == [(1, 250), (251, 251)]
    big = plan_chunks(10_000)
    assert len(big) == 16 and big[0] == (1, 625) and big[-1] == (9376, 10_000)


def test_a_zip_of_an_unknown_version_is_refused_not_a_crash():
    """Found by fuzzing (T5): zipfile raises NotImplementedError for a version it does not
    know; the upload is refused as unreadable (422), never answered 500."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("a.xml", b"<a/>")
    data = bytearray(buf.getvalue())
    central = data.rfind(b"PK\x01\x02")
    data[central + 6] = 238  # "version needed to extract": 23.8
    with pytest.raises(UnreadableUpload) as refused:
        open_zip(bytes(data), ArchiveLimits(10, 1 << 20))
    assert refused.value.violations[0].code == "batch.not_a_zip"
    assert "version" in refused.value.detail
