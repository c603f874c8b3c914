"""Export summary declaration (汇总申报, CEB701): a month's released export lists, grouped.

Why: for e-commerce exports (9610) the broker files one customs declaration per group of
released inventory lists instead of one per parcel, by the 15th of the following month.
The public merge rule (海关总署公告2018年第194号 and the CEB701 field notes):

- lists go into one summary application when their HEADS agree on: declaring customs
  (customsCode), declarant (agentCode), consignor (收发货人, ebcCode), with summaryFlag 2
  also the producer/seller (生产销售单位, ownerCode), transport mode (trafMode), country of
  arrival (运抵国, head ``country``), exit port (出境关别, portCode) and supervision site
  (loctNo, when given);
- within an application, LINES merge into one goods item of the declaration when they agree
  on the 10-digit HS code (gcode), final destination country (the line's ``country``),
  currency and, with itemNameFlag 1, the enterprise's item name (itemName).

HS code and currency are therefore item keys, not list keys: a list with two HS codes sits in
exactly one application and contributes to two of its items.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

from gateway.domain.rules import DocumentView

SUMMARY_BY_CONSIGNOR = "1"  # summaryFlag 1: 按收发货人单一汇总
SUMMARY_BY_CONSIGNOR_AND_OWNER = "2"  # summaryFlag 2: 按收发货人和生产销售单位汇总
ITEM_NAME_FLAG = "1"  # itemNameFlag 1: merge lines with the same original item name
# Head fields of SummaryApplyHead this module cannot know: the gateway fills them at send time.
GATEWAY_FILLS = ("guid", "appTime", "copNo")


@dataclass(frozen=True)
class ReleasedList:
    """A released export inventory list (CEB603 head and lines), its invtNo and release day."""

    invt_no: str
    doc: DocumentView
    released_on: dt.date  # the China local date of the release receipt (800)


@dataclass(frozen=True, order=True)
class SummaryKey:
    """The head fields lists must share to be summarised together."""

    customs_code: str
    agent_code: str
    ebc_code: str
    owner_code: str  # "" unless summarising by consignor and owner (summaryFlag 2)
    traf_mode: str
    country: str  # 运抵国
    port_code: str
    loct_no: str  # "" when the lists name no supervision site


@dataclass(frozen=True)
class SummaryItem:
    """One goods item of the future declaration: merged lines of one HS code.

    ``qty`` is None when the merged lines use different declared units (``unit`` is then
    ""): such quantities do not add up; the legal quantity ``qty1`` in ``unit1`` does.
    """

    gcode: str
    item_name: str
    country: str  # 最终目的国 of the lines
    currency: str
    qty: Decimal | None
    unit: str
    qty1: Decimal | None
    unit1: str
    total_price: Decimal
    line_count: int


@dataclass(frozen=True)
class SummaryGroup:
    """One summary application: the lists it names and the goods items they make."""

    month: str  # YYYY-MM
    key: SummaryKey
    invt_nos: tuple[str, ...]
    items: tuple[SummaryItem, ...]
    agent_name: str
    ebc_name: str
    summary_flag: str

    def total_price(self, currency: str) -> Decimal:
        """The goods value of the application in one currency."""
        return sum((i.total_price for i in self.items if i.currency == currency), Decimal(0))


def _parse_month(month: str) -> tuple[int, int]:
    text = month.strip().replace("-", "")
    if len(text) != 6 or not text.isdigit() or not 1 <= int(text[4:]) <= 12:
        raise ValueError(f"month must be YYYY-MM; got {month!r}")
    return int(text[:4]), int(text[4:])


def _field(fields: dict[str, str], name: str) -> str:
    return (fields.get(name) or "").strip()


def _number(fields: dict[str, str], name: str, invt_no: str) -> Decimal | None:
    text = _field(fields, name)
    if not text:
        return None
    try:
        value = Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{invt_no}: {name} is not a number: {text!r}") from None
    if not value.is_finite():
        raise ValueError(f"{invt_no}: {name} is not a finite number: {text!r}")
    return value


def summary_key(doc: DocumentView, *, by_owner: bool = False) -> SummaryKey:
    """The grouping key of one export list (its head fields)."""
    h = doc.head
    return SummaryKey(
        customs_code=_field(h, "customsCode"),
        agent_code=_field(h, "agentCode"),
        ebc_code=_field(h, "ebcCode"),
        owner_code=_field(h, "ownerCode") if by_owner else "",
        traf_mode=_field(h, "trafMode"),
        country=_field(h, "country"),
        port_code=_field(h, "portCode"),
        loct_no=_field(h, "loctNo"),
    )


@dataclass
class _ItemSum:
    qty: Decimal | None = Decimal(0)
    qty1: Decimal | None = Decimal(0)
    units: set[str] = field(default_factory=set)
    units1: set[str] = field(default_factory=set)
    total: Decimal = Decimal(0)
    count: int = 0


def _add(total: Decimal | None, value: Decimal | None) -> Decimal | None:
    return None if total is None or value is None else total + value


def _items(lists: list[ReleasedList]) -> tuple[SummaryItem, ...]:
    sums: dict[tuple[str, str, str, str], _ItemSum] = {}
    for rl in lists:
        for line in rl.doc.lines:
            key = (
                _field(line, "gcode"),
                _field(line, "itemName"),
                _field(line, "country"),
                _field(line, "currency"),
            )
            s = sums.setdefault(key, _ItemSum())
            s.qty = _add(s.qty, _number(line, "qty", rl.invt_no))
            s.qty1 = _add(s.qty1, _number(line, "qty1", rl.invt_no))
            s.units.add(_field(line, "unit"))
            s.units1.add(_field(line, "unit1"))
            total = _number(line, "totalPrice", rl.invt_no)
            if total is None:
                raise ValueError(f"{rl.invt_no}: a line has no totalPrice")
            s.total += total
            s.count += 1
    out = []
    for (gcode, name, country, currency), s in sorted(sums.items()):
        unit = next(iter(s.units)) if len(s.units) == 1 else ""
        unit1 = next(iter(s.units1)) if len(s.units1) == 1 else ""
        out.append(
            SummaryItem(
                gcode=gcode,
                item_name=name,
                country=country,
                currency=currency,
                qty=s.qty if unit else None,
                unit=unit,
                qty1=s.qty1 if unit1 else None,
                unit1=unit1,
                total_price=s.total,
                line_count=s.count,
            )
        )
    return tuple(out)


def group_for_summary(
    lists: Iterable[ReleasedList], month: str, *, by_owner: bool = False
) -> list[SummaryGroup]:
    """Group the lists released in ``month`` (YYYY-MM) into summary applications.

    Lists released in other months are left out; every list of the month is in exactly one
    group. Groups come sorted by key, their lists by invtNo. ``by_owner`` also splits by
    producer/seller (summaryFlag 2). A repeated invtNo is a caller's bug: ValueError.
    """
    year, mon = _parse_month(month)
    by_key: dict[SummaryKey, list[ReleasedList]] = {}
    seen: set[str] = set()
    for rl in lists:
        if rl.invt_no in seen:
            raise ValueError(f"inventory list {rl.invt_no} is listed twice")
        seen.add(rl.invt_no)
        if (rl.released_on.year, rl.released_on.month) != (year, mon):
            continue
        by_key.setdefault(summary_key(rl.doc, by_owner=by_owner), []).append(rl)
    flag = SUMMARY_BY_CONSIGNOR_AND_OWNER if by_owner else SUMMARY_BY_CONSIGNOR
    groups = []
    for key in sorted(by_key):
        members = sorted(by_key[key], key=lambda rl: rl.invt_no)
        first = members[0].doc.head
        groups.append(
            SummaryGroup(
                month=f"{year:04d}-{mon:02d}",
                key=key,
                invt_nos=tuple(rl.invt_no for rl in members),
                items=_items(members),
                agent_name=_field(first, "agentName"),
                ebc_name=_field(first, "ebcName"),
                summary_flag=flag,
            )
        )
    return groups


def build_summary_apply_fields(
    group: SummaryGroup,
    *,
    guid: str | None = None,
    app_time: str | None = None,
    cop_no: str | None = None,
    decl_agent_code: str | None = None,
    decl_agent_name: str | None = None,
) -> dict[str, Any]:
    """The CEB701 SummaryApplyHead and SummaryApplyList fields of a group, in schema order.

    Returns ``{"head": {...}, "lists": [{"invtNo": ...}, ...]}``. The gateway fills
    ``guid`` (36 upper-case characters), ``appTime`` (YYYYMMDDhhmmss, China time) and
    ``copNo`` (its unique number, up to 30) unless passed here; customs assigns ``preNo``
    and ``sumNo``. ``startTime``/``endTime`` are deliberately left out: when present,
    customs summarises every list of that period and ignores the lists named here. The
    customs broker (declAgent) defaults to the declarant.
    """
    k = group.key
    head: dict[str, str] = {}
    if guid is not None:
        head["guid"] = guid
    head["appType"] = "1"
    if app_time is not None:
        head["appTime"] = app_time
    head["appStatus"] = "2"
    head["customsCode"] = k.customs_code
    if cop_no is not None:
        head["copNo"] = cop_no
    head.update(
        {
            "agentCode": k.agent_code,
            "agentName": group.agent_name,
            "ebcCode": k.ebc_code,
            "ebcName": group.ebc_name,
            "declAgentCode": decl_agent_code or k.agent_code,
            "declAgentName": decl_agent_name or group.agent_name,
        }
    )
    if k.loct_no:
        head["loctNo"] = k.loct_no
    head.update(
        {
            "summaryFlag": group.summary_flag,
            "itemNameFlag": ITEM_NAME_FLAG,
            "msgCount": "1",  # not split: one application per message document
            "msgSeqNo": "1",
        }
    )
    return {"head": head, "lists": [{"invtNo": n} for n in group.invt_nos]}
