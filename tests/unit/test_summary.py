"""Export summary (CEB701): a month's released lists grouped by the public merge rule."""

from __future__ import annotations

import copy
import datetime as dt
import itertools
import random
from decimal import Decimal
from pathlib import Path

import pytest
from lxml import etree

from gateway.domain.rules import DocumentView
from gateway.domain.summary import (
    GATEWAY_FILLS,
    ReleasedList,
    SummaryKey,
    build_summary_apply_fields,
    group_for_summary,
    summary_key,
)
from gateway.xml.documents import document_elements
from gateway.xml.parsing import parse_xml
from gateway.xml.validation import schema_violations
from schemas import CEB_NS, get_spec

ROOT = Path(__file__).resolve().parents[2]
MESSAGES = ROOT / "tests" / "data" / "messages"
D = Decimal
NOV = dt.date(2026, 11, 24)

HEAD = {
    "customsCode": "5141",
    "agentCode": "4401986789",
    "agentName": "示例报关有限公司",
    "ebcCode": "4401961234",
    "ebcName": "示例出口电商企业有限公司",
    "ownerCode": "4401961234",
    "trafMode": "5",
    "country": "502",
    "portCode": "5141",
}


def _line(gcode: str, total: str, qty: str = "1", unit: str = "011", **extra: str):
    return {
        "gcode": gcode,
        "itemName": extra.pop("itemName", "T恤"),
        "country": extra.pop("country", "502"),
        "currency": extra.pop("currency", "142"),
        "qty": qty,
        "unit": unit,
        "qty1": qty,
        "unit1": "011",
        "totalPrice": total,
        **extra,
    }


def _list(invt_no: str, *lines: dict[str, str], on: dt.date = NOV, **head: str) -> ReleasedList:
    lines = lines or (_line("6109100021", "100.00"),)
    return ReleasedList(invt_no, DocumentView("CEB603", {**HEAD, **head}, list(lines)), on)


def _sample_list() -> ReleasedList:
    root = parse_xml((MESSAGES / "CEB603" / "valid.xml").read_bytes())
    view = document_elements(root, get_spec("CEB603"))[0].view
    return ReleasedList("51412026E000004120", view, NOV)


# --- Grouping -----------------------------------------------------------------------------


def test_the_sample_export_list_makes_one_application_with_one_item_per_hs_code():
    [group] = group_for_summary([_sample_list()], "2026-11")
    assert group.key == SummaryKey("5141", "4401986789", "4401961234", "", "5", "502", "5141", "")
    assert group.invt_nos == ("51412026E000004120",)
    assert [(i.gcode, i.qty, i.unit, i.total_price) for i in group.items] == [
        ("6109100021", D("3"), "011", D("177.00")),
        ("8518300000", D("1"), "007", D("280.00")),
    ]
    assert group.total_price("142") == D("457.00")  # 177.00 + 280.00


def test_lists_sharing_every_head_key_share_one_application_and_merge_lines_per_hs_code():
    # Two lists, three T-shirt lines: 100.00 + 50.00 + 25.50 = 175.50 in 3 + 2 + 1 = 6 pieces.
    a = _list("E2", _line("6109100021", "100.00", "3"), _line("8518300000", "280.00"))
    b = _list("E1", _line("6109100021", "50.00", "2"), _line("6109100021", "25.50", "1"))
    [group] = group_for_summary([a, b], "2026-11")
    assert group.invt_nos == ("E1", "E2")  # sorted
    shirts = next(i for i in group.items if i.gcode == "6109100021")
    assert (shirts.qty, shirts.qty1, shirts.total_price, shirts.line_count) == (
        D("6"),
        D("6"),
        D("175.50"),
        3,
    )


@pytest.mark.parametrize(
    "field", ["customsCode", "agentCode", "ebcCode", "trafMode", "country", "portCode", "loctNo"]
)
def test_lists_that_differ_on_a_head_key_go_to_different_applications(field):
    groups = group_for_summary([_list("E1"), _list("E2", **{field: "9999"})], "2026-11")
    assert [g.invt_nos for g in groups] in ([("E1",), ("E2",)], [("E2",), ("E1",)])


def test_the_owner_splits_applications_only_when_summarising_by_owner():
    lists = [_list("E1"), _list("E2", ownerCode="4401960000")]
    assert len(group_for_summary(lists, "2026-11")) == 1
    by_owner = group_for_summary(lists, "2026-11", by_owner=True)
    assert len(by_owner) == 2 and all(g.summary_flag == "2" for g in by_owner)


def test_hs_code_currency_destination_and_item_name_split_items_not_applications():
    lines = [
        _line("6109100021", "10"),
        _line("6109100022", "10"),
        _line("6109100021", "10", currency="502"),
        _line("6109100021", "10", country="303"),
        _line("6109100021", "10", itemName="Polo衫"),
    ]
    [group] = group_for_summary([_list("E1", *lines)], "2026-11")
    assert len(group.items) == 5
    assert group.total_price("142") == D("40") and group.total_price("502") == D("10")


def test_lines_in_different_declared_units_add_legal_quantities_but_not_declared_ones():
    lines = [_line("6109100021", "10", "2", unit="011"), _line("6109100021", "10", "1", unit="007")]
    [group] = group_for_summary([_list("E1", *lines)], "2026-11")
    [item] = group.items
    assert (item.qty, item.unit, item.qty1, item.unit1) == (None, "", D("3"), "011")


def test_only_lists_released_in_the_month_are_summarised():
    lists = [
        _list("OCT", on=dt.date(2026, 10, 31)),
        _list("NOV1", on=dt.date(2026, 11, 1)),
        _list("NOV30", on=dt.date(2026, 11, 30)),
        _list("DEC", on=dt.date(2026, 12, 1)),
    ]
    [group] = group_for_summary(lists, "2026-11")
    assert group.invt_nos == ("NOV1", "NOV30") and group.month == "2026-11"
    assert group_for_summary(lists, "202612")[0].invt_nos == ("DEC",)
    assert group_for_summary([], "2026-11") == []


@pytest.mark.parametrize("month", ["2026-13", "2026/11", "Nov 2026", "2026-1"])
def test_a_bad_month_is_refused(month):
    with pytest.raises(ValueError):
        group_for_summary([_list("E1")], month)


def test_a_list_given_twice_or_without_a_line_total_is_refused():
    with pytest.raises(ValueError):
        group_for_summary([_list("E1"), _list("E1")], "2026-11")
    no_total = _line("6109100021", "")
    with pytest.raises(ValueError):
        group_for_summary([_list("E1", no_total)], "2026-11")


# --- The CEB701 fields --------------------------------------------------------------------


def test_the_application_fields_are_what_the_sample_ceb701_declares():
    sample = _sample_list()
    second = ReleasedList("51412026E000004121", sample.doc, NOV)
    [group] = group_for_summary([sample, second], "2026-11")
    fields = build_summary_apply_fields(
        group, guid="4C8E1B65-AF71-4792-A23F-5A6B7C8D9E25", app_time="20261201090000",
        cop_no="SUM202612010001",
    )  # fmt: skip
    root = parse_xml((MESSAGES / "CEB701" / "valid.xml").read_bytes())
    view = document_elements(root, get_spec("CEB701"))[0].view
    expected = {k: v for k, v in view.head.items() if k not in ("startTime", "endTime")}
    assert fields["head"] == expected
    assert fields["lists"] == [{"invtNo": x["invtNo"]} for x in view.lines]


def test_without_the_gateway_fields_the_head_lacks_exactly_those():
    [group] = group_for_summary([_list("E1")], "2026-11")
    head = build_summary_apply_fields(group)["head"]
    assert set(GATEWAY_FILLS) == {"guid", "appTime", "copNo"}
    assert not set(GATEWAY_FILLS) & set(head)
    assert "startTime" not in head and "endTime" not in head  # they would override the list
    assert (head["declAgentCode"], head["summaryFlag"], head["itemNameFlag"]) == (
        "4401986789",
        "1",
        "1",
    )
    assert "loctNo" not in head


def test_a_customs_broker_and_a_site_are_carried_into_the_head():
    [group] = group_for_summary([_list("E1", loctNo="5141A")], "2026-11")
    head = build_summary_apply_fields(
        group, decl_agent_code="4401989999", decl_agent_name="另一报关行"
    )["head"]
    assert (head["declAgentCode"], head["declAgentName"], head["loctNo"]) == (
        "4401989999",
        "另一报关行",
        "5141A",
    )


def test_the_fields_make_a_schema_valid_ceb701_once_the_gateway_fills_its_own():
    lists = [_list(f"51412026E0000041{i:02d}") for i in range(3)]
    [group] = group_for_summary(lists, "2026-11")
    fields = build_summary_apply_fields(
        group, guid="4C8E1B65-AF71-4792-A23F-5A6B7C8D9E99", app_time="20261201090000",
        cop_no="SUM202612010002",
    )  # fmt: skip
    root = parse_xml((MESSAGES / "CEB701" / "valid.xml").read_bytes())
    old = root.find(f"{{{CEB_NS}}}SummaryApply")
    assert old is not None
    apply = etree.Element(f"{{{CEB_NS}}}SummaryApply")
    head = etree.SubElement(apply, f"{{{CEB_NS}}}SummaryApplyHead")
    for name, value in fields["head"].items():
        etree.SubElement(head, f"{{{CEB_NS}}}{name}").text = value
    for line in fields["lists"]:
        el = etree.SubElement(apply, f"{{{CEB_NS}}}SummaryApplyList")
        etree.SubElement(el, f"{{{CEB_NS}}}invtNo").text = line["invtNo"]
    root.replace(old, apply)
    assert schema_violations(copy.deepcopy(root), get_spec("CEB701")) == []


# --- Properties ---------------------------------------------------------------------------


def test_every_list_of_the_month_is_in_exactly_one_group_and_groups_differ_on_a_key():
    rnd = random.Random(701)
    choices = {
        "customsCode": ["5141", "5130"],
        "agentCode": ["A1", "A2"],
        "ebcCode": ["E1", "E2"],
        "ownerCode": ["O1", "O2"],
        "trafMode": ["5", "2"],
        "country": ["502", "303"],
        "portCode": ["5141", "5145"],
    }
    for _ in range(60):
        by_owner = rnd.random() < 0.5
        lists = []
        for n in range(rnd.randint(0, 30)):
            head = {k: rnd.choice(v) for k, v in choices.items()}
            lines = [
                _line(rnd.choice(["6109100021", "8518300000"]), f"{rnd.randint(1, 9999)}.00")
                for _ in range(rnd.randint(1, 3))
            ]
            on = dt.date(2026, rnd.choice([10, 11, 11, 11, 12]), rnd.randint(1, 28))
            lists.append(_list(f"INV{n:04d}", *lines, on=on, **head))
        groups = group_for_summary(lists, "2026-11", by_owner=by_owner)
        of_month = [rl for rl in lists if rl.released_on.month == 11]
        grouped = [n for g in groups for n in g.invt_nos]
        assert sorted(grouped) == sorted(rl.invt_no for rl in of_month)  # each exactly once
        for g1, g2 in itertools.combinations(groups, 2):
            assert g1.key != g2.key
        by_no = {rl.invt_no: rl for rl in of_month}
        for g in groups:
            members = [by_no[n] for n in g.invt_nos]
            assert all(summary_key(rl.doc, by_owner=by_owner) == g.key for rl in members)
            line_total = sum(
                (D(line["totalPrice"]) for rl in members for line in rl.doc.lines), D(0)
            )
            assert g.total_price("142") == line_total  # merging loses no value
            assert sum(i.line_count for i in g.items) == sum(len(rl.doc.lines) for rl in members)
