"""Cross-border retail import tax (跨境电商零售进口税): our estimate, and customs' bill to compare.

Why estimate at all: the order's ``taxTotal`` must match what customs will bill (CEB816), and
a broker wants to see a wrong rate or a missed consumption tax before customs does.

The public rule (财关税〔2016〕18号, limits raised by 财关税〔2018〕49号; 海关总署公告2016年第26号):

- 完税价格 (dutiable value) = the actual transaction price: goods retail price plus freight
  and insurance. Per line: ``totalPrice`` plus the line's share of the head's ``freight``
  and ``insuredFee``, apportioned by value (largest remainder, so the shares add up exactly).
- Within the limits (5,000 CNY per transaction, 26,000 CNY per person per year) the tariff
  is 0 and import VAT and consumption tax are levied at 70 % of the statutory amount.
- A single indivisible item whose dutiable value exceeds 5,000 CNY (below the annual limit)
  may still come through the retail channel, but is taxed in full as general trade: the
  general tariff rate, VAT and consumption tax at 100 % (``TaxMode.GENERAL``).

Per line, with V the dutiable value, t the tariff rate, c the ad valorem consumption-tax
rate, v the VAT rate and s the share levied (0.7 retail, 1 general):

    tariff            = round(V × t)                       (0 in retail mode)
    组成计税价格 B      = (V + tariff) / (1 − c)              (消费税组成计税价格)
    statutory CT      = B × c                              (not rounded: an intermediate)
    consumption tax   = round(statutory CT × s)
    VAT               = round((V + tariff + statutory CT) × v × s)

Rounding is to the cent, half up, once per levied amount per line; head totals are the sums
of the rounded line amounts (which is how a CEB816 bill adds up). Specific-rate consumption
tax (per litre or per piece) is not modelled: the table holds ad valorem rates only.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, InvalidOperation
from enum import StrEnum
from pathlib import Path
from typing import Any

from gateway.domain.rules import SINGLE_TRANSACTION_LIMIT, DocumentView

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
RETAIL_SHARE = Decimal("0.7")  # 按法定应纳税额的70%征收
DEFAULT_VAT = Decimal("0.13")


class TaxMode(StrEnum):
    """How a transaction is taxed: the retail preference, or in full as general trade."""

    RETAIL = "retail"  # tariff 0, VAT and CT at 70 %
    GENERAL = "general"  # over the single limit (one indivisible item): everything at 100 %


def money(value: Decimal) -> Decimal:
    """Round an amount to the cent, half up, the way customs rounds a tax."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def _decimal(value: Any, what: str) -> Decimal:
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError(f"{what} is not a number: {value!r}") from None
    if not number.is_finite():
        raise ValueError(f"{what} is not a finite number: {value!r}")
    return number


@dataclass(frozen=True)
class TaxRate:
    """The rates of one HS-code prefix (fractions: 0.13 = 13 %); ``prefix`` "" is the default."""

    vat: Decimal
    consumption: Decimal
    name: str
    tariff: Decimal = Decimal(0)  # the general-trade tariff; retail imports pay 0
    prefix: str = ""

    def __post_init__(self) -> None:
        for what, rate in (("vat", self.vat), ("tariff", self.tariff)):
            if not Decimal(0) <= rate <= Decimal(1):
                raise ValueError(f"{what} rate of {self.prefix or 'default'} must be 0..1")
        if not Decimal(0) <= self.consumption < Decimal(1):  # 1 - c is a divisor
            raise ValueError(f"consumption rate of {self.prefix or 'default'} must be 0..<1")


@dataclass(frozen=True)
class TaxRates:
    """The rate table: longest HS-code prefix wins, else the default row."""

    default: TaxRate
    by_prefix: Mapping[str, TaxRate]

    @classmethod
    def load(cls, path: str | Path) -> TaxRates:
        """Read the operator-maintained table (config/tax_rates.toml)."""
        with open(path, "rb") as fh:
            return cls.from_mapping(tomllib.load(fh))

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TaxRates:
        """Build from ``{"default": {...}, "rate": [{"prefix": ..., ...}, ...]}`` (the TOML shape).

        Rates may be strings ("0.13") or numbers; a row's missing rate inherits the default's.
        """
        unknown = set(data) - {"default", "rate"}
        if unknown:
            raise ValueError(f"unknown keys in the tax rate table: {sorted(unknown)}")
        d = dict(data.get("default") or {})
        default = TaxRate(
            vat=_decimal(d.get("vat", DEFAULT_VAT), "default vat"),
            consumption=_decimal(d.get("consumption", 0), "default consumption"),
            name=str(d.get("name", "default")),
            tariff=_decimal(d.get("tariff", 0), "default tariff"),
        )
        rows: dict[str, TaxRate] = {}
        for row in data.get("rate") or ():
            prefix = str(row.get("prefix", "")).strip()
            if not (1 <= len(prefix) <= 10 and prefix.isdigit()):
                raise ValueError(f"a rate row's prefix must be 1 to 10 digits; got {prefix!r}")
            if prefix in rows:
                raise ValueError(f"the tax rate table lists prefix {prefix} twice")
            extra = set(row) - {"prefix", "name", "vat", "consumption", "tariff"}
            if extra:
                raise ValueError(f"unknown keys in rate row {prefix}: {sorted(extra)}")
            rows[prefix] = TaxRate(
                vat=_decimal(row.get("vat", default.vat), f"{prefix} vat"),
                consumption=_decimal(
                    row.get("consumption", default.consumption), f"{prefix} consumption"
                ),
                name=str(row.get("name", prefix)),
                tariff=_decimal(row.get("tariff", default.tariff), f"{prefix} tariff"),
                prefix=prefix,
            )
        return cls(default, rows)

    def rate_for(self, gcode: str) -> TaxRate:
        """The rates of a 10-digit HS code: the longest matching prefix, else the default."""
        code = gcode.strip()
        for length in range(min(len(code), 10), 0, -1):
            row = self.by_prefix.get(code[:length])
            if row is not None:
                return row
        return self.default


@dataclass(frozen=True)
class LineTax:
    """The taxes of one goods line (``gnum``) on its dutiable value ``tax_price``."""

    gnum: int
    gcode: str
    tax_price: Decimal
    customs_tax: Decimal
    vat: Decimal
    consumption_tax: Decimal
    rate_name: str = ""

    @property
    def total(self) -> Decimal:
        """All three taxes of the line."""
        return self.customs_tax + self.vat + self.consumption_tax


@dataclass(frozen=True)
class TaxAssessment:
    """The taxes of one inventory list; head amounts are the sums of the rounded lines."""

    lines: tuple[LineTax, ...]
    customs_tax: Decimal
    vat: Decimal
    consumption_tax: Decimal
    total: Decimal
    mode: TaxMode = TaxMode.RETAIL

    @property
    def dutiable_value(self) -> Decimal:
        """完税价格 of the whole list: what the annual quota counts."""
        return sum((line.tax_price for line in self.lines), ZERO)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready form (amounts as strings, exact) for storage and the API."""

        def amounts(x: LineTax | TaxAssessment) -> dict[str, str]:
            return {
                "customs_tax": str(x.customs_tax),
                "vat": str(x.vat),
                "consumption_tax": str(x.consumption_tax),
                "total": str(x.total),
            }

        return {
            "mode": str(self.mode),
            **amounts(self),
            "lines": [
                {"gnum": x.gnum, "gcode": x.gcode, "tax_price": str(x.tax_price), **amounts(x)}
                | ({"rate_name": x.rate_name} if x.rate_name else {})
                for x in self.lines
            ],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaxAssessment:
        """Read back what ``as_dict`` wrote (head amounts as stored, not re-summed)."""
        lines = tuple(
            LineTax(
                int(x["gnum"]),
                str(x["gcode"]),
                Decimal(x["tax_price"]),
                Decimal(x["customs_tax"]),
                Decimal(x["vat"]),
                Decimal(x["consumption_tax"]),
                str(x.get("rate_name", "")),
            )
            for x in data.get("lines", ())
        )
        return cls(
            lines,
            Decimal(data["customs_tax"]),
            Decimal(data["vat"]),
            Decimal(data["consumption_tax"]),
            Decimal(data["total"]),
            TaxMode(data.get("mode", TaxMode.RETAIL)),
        )

    @classmethod
    def of_lines(cls, lines: Iterable[LineTax], mode: TaxMode = TaxMode.RETAIL) -> TaxAssessment:
        """Sum lines into an assessment (so the head always adds up)."""
        out = tuple(lines)
        customs = sum((x.customs_tax for x in out), ZERO)
        vat = sum((x.vat for x in out), ZERO)
        consumption = sum((x.consumption_tax for x in out), ZERO)
        return cls(out, customs, vat, consumption, customs + vat + consumption, mode)


def apportion(total: Decimal, weights: Sequence[Decimal]) -> list[Decimal]:
    """Split ``total`` in proportion to ``weights``, to the cent, adding up exactly.

    Largest remainder: each share is rounded down, then the cents left go to the lines
    with the largest remainders (ties: the earlier line), so no share is ever negative.
    """
    if not weights:
        return []
    total = money(total)
    weight_sum = sum(weights, Decimal(0))
    if weight_sum <= 0:  # nothing to weigh by (all lines free): split evenly
        weights, weight_sum = [Decimal(1)] * len(weights), Decimal(len(weights))
    exact = [total * w / weight_sum for w in weights]
    shares = [x.quantize(CENT, rounding=ROUND_DOWN) for x in exact]
    left = int((total - sum(shares, Decimal(0))) / CENT)
    by_remainder = sorted(range(len(exact)), key=lambda i: (-(exact[i] - shares[i]), i))
    for i in by_remainder[:left]:
        shares[i] += CENT
    return shares


def line_tax(
    gnum: int, gcode: str, value: Decimal, rate: TaxRate, mode: TaxMode = TaxMode.RETAIL
) -> LineTax:
    """The taxes of one line whose dutiable value (完税价格) is ``value`` CNY."""
    value = money(value)
    share = RETAIL_SHARE if mode == TaxMode.RETAIL else Decimal(1)
    tariff = money(value * rate.tariff) if mode == TaxMode.GENERAL else ZERO
    c = rate.consumption
    statutory_ct = (value + tariff) / (1 - c) * c  # 组成计税价格 × 消费税税率
    consumption = money(statutory_ct * share)
    vat = money((value + tariff + statutory_ct) * rate.vat * share)
    return LineTax(gnum, gcode, value, tariff, vat, consumption, rate.name)


def assess(doc: DocumentView, rates: TaxRates, mode: TaxMode = TaxMode.RETAIL) -> TaxAssessment:
    """Estimate the tax bill of an import inventory list (CEB621 head and lines, in CNY).

    Expects a document that passed the schema and rules (every line has ``totalPrice``);
    raises ValueError on a missing or non-numeric amount rather than guess.
    """
    values = [
        _decimal(line.get("totalPrice", ""), f"line {i} totalPrice")
        for i, line in enumerate(doc.lines, start=1)
    ]
    fees = sum((_decimal(doc.head.get(k) or "0", k) for k in ("freight", "insuredFee")), Decimal(0))
    shares = apportion(fees, values)
    out = []
    for i, (line, value, share) in enumerate(zip(doc.lines, values, shares, strict=True), 1):
        gcode = (line.get("gcode") or "").strip()
        gnum = int(line["gnum"]) if (line.get("gnum") or "").strip().isdigit() else i
        out.append(line_tax(gnum, gcode, value + share, rates.rate_for(gcode), mode))
    return TaxAssessment.of_lines(out, mode)


def choose_mode(
    doc: DocumentView, dutiable_value: Decimal, *, exceeds_annual_quota: bool = False
) -> TaxMode:
    """Retail preference, or general trade for one indivisible item over the 5,000 CNY limit.

    ``exceeds_annual_quota`` follows the 2016 text (累加后超过个人年度限值的单次交易按一般贸易
    全额征税); under the 2018 notice such a transaction leaves the retail channel altogether
    (按一般贸易管理), so the gateway should normally refuse it (quota.check) rather than tax it.
    """
    single_item = False
    if len(doc.lines) == 1:
        try:
            single_item = Decimal((doc.lines[0].get("qty") or "").strip()) == 1
        except InvalidOperation:
            single_item = False
    if exceeds_annual_quota or (single_item and dutiable_value > SINGLE_TRANSACTION_LIMIT):
        return TaxMode.GENERAL
    return TaxMode.RETAIL


def from_tax_bill(
    head: Mapping[str, str], lines: Sequence[Mapping[str, str]] = ()
) -> TaxAssessment:
    """Customs' bill (CEB816 TaxHeadRd, optionally its TaxListRd lines) as an assessment.

    The head amounts are customs' word, so they are kept as billed even if the lines do not
    add up to them; ``mode`` is RETAIL unless the bill levies a tariff.
    """
    customs = money(_decimal(head.get("customsTax", ""), "customsTax"))
    vat = money(_decimal(head.get("valueAddedTax", ""), "valueAddedTax"))
    consumption = money(_decimal(head.get("consumptionTax", ""), "consumptionTax"))
    out = tuple(
        LineTax(
            gnum=int(_decimal(line.get("gnum", i), "gnum")),
            gcode=(line.get("gcode") or "").strip(),
            tax_price=money(_decimal(line.get("taxPrice", ""), f"line {i} taxPrice")),
            customs_tax=money(_decimal(line.get("customsTax", ""), f"line {i} customsTax")),
            vat=money(_decimal(line.get("valueAddedTax", ""), f"line {i} valueAddedTax")),
            consumption_tax=money(
                _decimal(line.get("consumptionTax", ""), f"line {i} consumptionTax")
            ),
        )
        for i, line in enumerate(lines, start=1)
    )
    mode = TaxMode.GENERAL if customs > 0 else TaxMode.RETAIL
    return TaxAssessment(out, customs, vat, consumption, customs + vat + consumption, mode)


@dataclass(frozen=True)
class TaxDifference:
    """Where our estimate and customs' bill disagree (``gnum`` None = the head)."""

    field: str  # customs_tax, vat, consumption_tax, total, tax_price, line
    gnum: int | None
    estimated: Decimal | None
    billed: Decimal | None


def differences(
    estimate: TaxAssessment, bill: TaxAssessment, tolerance: Decimal = CENT
) -> list[TaxDifference]:
    """What differs by more than ``tolerance`` (default a cent: rounding) between the two.

    Lines are matched by ``gnum``; a bill without lines is compared on the head only.
    """
    out: list[TaxDifference] = []

    def compare(name: str, gnum: int | None, ours: Decimal, theirs: Decimal) -> None:
        if abs(ours - theirs) > tolerance:
            out.append(TaxDifference(name, gnum, ours, theirs))

    for name in ("customs_tax", "vat", "consumption_tax", "total"):
        compare(name, None, getattr(estimate, name), getattr(bill, name))
    if bill.lines:
        ours_by = {x.gnum: x for x in estimate.lines}
        theirs_by = {x.gnum: x for x in bill.lines}
        for gnum in sorted(ours_by.keys() | theirs_by.keys()):
            ours, theirs = ours_by.get(gnum), theirs_by.get(gnum)
            if ours is None or theirs is None:
                out.append(
                    TaxDifference(
                        "line", gnum, ours.total if ours else None, theirs.total if theirs else None
                    )
                )
                continue
            for name in ("tax_price", "customs_tax", "vat", "consumption_tax"):
                compare(name, gnum, getattr(ours, name), getattr(theirs, name))
    return out
