"""Cross-border retail import tax (跨境电商零售进口税): what customs bills on a CEB816.

Within the single-transaction limit the tariff is 0 and VAT and consumption tax are levied
at 70 % of the statutory amounts. Consumption tax is ad valorem on the composite base
price / (1 - rate); VAT is 13 % of price + full consumption tax. Amounts round half up to
the cent per line; the head is the sum of its lines, so the bill always adds up.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

CENT = Decimal("0.01")
VAT_RATE = Decimal("0.13")
RETAIL_SHARE = Decimal("0.7")
# A small consumption-tax table by HS prefix (the sandbox's simplification of the real one).
CONSUMPTION_RATES: dict[str, Decimal] = {
    "3303": Decimal("0.15"),  # perfumes (taxed as high-end cosmetics)
    "7113": Decimal("0.10"),  # jewellery
    "7116": Decimal("0.10"),  # pearls and precious stones
    "9101": Decimal("0.20"),  # precious-metal watches
    "9102": Decimal("0.20"),  # other wrist watches (high-end)
    "2208": Decimal("0.20"),  # spirits
    "8711": Decimal("0.10"),  # motorcycles
}


def consumption_rate(gcode: str) -> Decimal:
    """The consumption-tax rate of an HS code (0 when the goods are not taxable)."""
    for prefix, rate in CONSUMPTION_RATES.items():
        if gcode.startswith(prefix):
            return rate
    return Decimal(0)


def _money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


@dataclass(frozen=True)
class TaxLine:
    """The taxes of one goods line."""

    gnum: int
    gcode: str
    tax_price: Decimal
    customs_tax: Decimal
    value_added_tax: Decimal
    consumption_tax: Decimal


@dataclass(frozen=True)
class TaxBill:
    """One inventory list's tax bill; head amounts are the sums of the lines."""

    invt_no: str
    tax_no: str
    lines: tuple[TaxLine, ...]

    @property
    def customs_tax(self) -> Decimal:
        return sum((line.customs_tax for line in self.lines), Decimal("0.00"))

    @property
    def value_added_tax(self) -> Decimal:
        return sum((line.value_added_tax for line in self.lines), Decimal("0.00"))

    @property
    def consumption_tax(self) -> Decimal:
        return sum((line.consumption_tax for line in self.lines), Decimal("0.00"))

    @property
    def total(self) -> Decimal:
        return self.customs_tax + self.value_added_tax + self.consumption_tax


def line_tax(gnum: int, gcode: str, price: Decimal) -> TaxLine:
    """Taxes of one line whose dutiable price is ``price`` (CNY)."""
    rate = consumption_rate(gcode)
    full_consumption = price / (1 - rate) * rate if rate else Decimal(0)
    consumption = _money(full_consumption * RETAIL_SHARE)
    vat = _money((price + full_consumption) * VAT_RATE * RETAIL_SHARE)
    return TaxLine(gnum, gcode, _money(price), Decimal("0.00"), vat, consumption)


def tax_bill(invt_no: str, lines: Sequence[Mapping[str, str]]) -> TaxBill:
    """The bill for an inventory list's lines (``gnum``, ``gcode``, ``totalPrice``)."""
    out = []
    for i, line in enumerate(lines[:99], start=1):
        try:
            price = Decimal(line.get("totalPrice") or "0")
            gnum = int(line.get("gnum") or i)
        except (InvalidOperation, ValueError):
            price, gnum = Decimal(0), i
        out.append(line_tax(gnum, (line.get("gcode") or "0" * 10)[:10], price))
    return TaxBill(invt_no, f"{invt_no}01", tuple(out))
