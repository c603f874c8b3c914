"""The benchmark's documents: CEB621 inventory lists of 1, 10 and 50 lines in a fixed mix.

Built by string templating from examples/CEB621.xml (microseconds each, so the load
generator can make a fresh one per request without becoming the bottleneck). Every valid
document has new guids, order/waybill/copNo numbers and its own buyer (a valid ID card
number), so neither the duplicate checks nor the annual quota refuse it by accident.
"""

from __future__ import annotations

import functools
import io
import random
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

from gateway.domain.rules import ID_CHECK, ID_WEIGHTS

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "CEB621.xml"

# Lines per document and their share of the documents (most parcels hold few items).
SIZES: dict[int, float] = {1: 0.6, 10: 0.3, 50: 0.1}
# What each request carries: valid, invalid against the schema, a resubmitted duplicate,
# valid XML that breaks a business rule (a line total that is not qty x price).
KINDS: dict[str, float] = {"valid": 0.85, "schema": 0.05, "duplicate": 0.05, "business": 0.05}

_LINE = """    <ceb:InventoryList>
      <ceb:gnum>{gnum}</ceb:gnum>
      <ceb:itemNo>SKU-{gnum:04d}</ceb:itemNo>
      <ceb:itemName>{name}</ceb:itemName>
      <ceb:gcode>{gcode}</ceb:gcode>
      <ceb:gname>{name}</ceb:gname>
      <ceb:gmodel>{model}</ceb:gmodel>
      <ceb:country>116</ceb:country>
      <ceb:currency>142</ceb:currency>
      <ceb:qty>{qty}</ceb:qty>
      <ceb:unit>122</ceb:unit>
      <ceb:qty1>{qty1}</ceb:qty1>
      <ceb:unit1>035</ceb:unit1>
      <ceb:price>{price}</ceb:price>
      <ceb:totalPrice>{total}</ceb:totalPrice>
    </ceb:InventoryList>
"""
# (name, HS code, model): infant formula and a face cream, as in the shipped example.
_GOODS = (("婴儿配方奶粉", "1901101000", "800克/罐"), ("保湿面霜", "3304990099", "50毫升/瓶"))


def _template() -> str:
    """The example with its lines cut out and its unique fields turned into placeholders."""
    text = EXAMPLE.read_text(encoding="utf-8")
    text = text[text.index("<ceb:CEB621Message") :]
    start = text.index("    <ceb:InventoryList>")
    end = text.rindex("</ceb:InventoryList>") + len("</ceb:InventoryList>\n")
    text = text[:start] + "{lines}" + text[end:]
    for old, new in (
        ('guid="9A1F3C52-7D44-4E0B-9B71-0C2D5E8F6A01"', 'guid="{msg_guid}"'),
        ("3E8B2A10-5C6D-4F7E-8A9B-1C2D3E4F5A60", "{doc_guid}"),
        ("ORD202611230001", "ORD{tag}"),
        ("LN202611230001", "LN{tag}"),
        ("COP202611230001", "COP{tag}"),
        ("11010519491231002X", "{buyer_id}"),
    ):
        assert old in text, old
        text = text.replace(old, new)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + text


TEMPLATE = _template()


def id_card(rng: random.Random) -> str:
    """A random 18-character resident ID card number with a correct check digit."""
    year, month, day = rng.randint(1950, 2005), rng.randint(1, 12), rng.randint(1, 28)
    first = f"110105{year:04d}{month:02d}{day:02d}{rng.randint(0, 999):03d}"
    return first + ID_CHECK[sum(int(c) * w for c, w in zip(first, ID_WEIGHTS, strict=True)) % 11]


@functools.cache
def _lines(n: int, broken: bool) -> str:
    out = []
    for gnum in range(1, n + 1):
        name, gcode, model = _GOODS[(gnum - 1) % len(_GOODS)]
        # Cheap lines on big lists: 50 lines stay under the 5,000 CNY single-transaction limit.
        qty, price = (2, "198.00") if n == 1 else (1, "9.90")
        total = f"{qty * float(price):.2f}"
        if broken and gnum == n:
            total = f"{qty * float(price) * 3:.2f}"  # not qty x price: a business-rule error
        out.append(
            _LINE.format(
                gnum=gnum,
                name=name,
                gcode=gcode,
                model=model,
                qty=qty,
                qty1=f"{0.8 * qty:.1f}",
                price=price,
                total=total,
            )
        )
    return "".join(out)


def _guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper()


def ceb621(lines: int, rng: random.Random, *, broken: bool = False) -> bytes:
    """A fresh CEB621 of one inventory list with ``lines`` lines (``broken``: a bad total)."""
    tag = f"{rng.getrandbits(56):014X}"
    return TEMPLATE.format(
        msg_guid=_guid(rng),
        doc_guid=_guid(rng),
        tag=tag,
        buyer_id=id_card(rng),
        lines=_lines(lines, broken),
    ).encode("utf-8")


def schema_invalid(lines: int, rng: random.Random) -> bytes:
    """A document the XSD refuses: the required ieFlag element is missing."""
    return ceb621(lines, rng).replace(b"<ceb:ieFlag>I</ceb:ieFlag>", b"", 1)


@dataclass
class Mix:
    """Draws (kind, lines, body) from the mix; duplicates resend a recent valid body."""

    seed: int = 1
    sizes: dict[int, float] | None = None
    kinds: dict[str, float] | None = None

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)
        sizes = self.sizes or SIZES
        kinds = self.kinds or KINDS
        self._sizes, self._size_w = list(sizes), list(sizes.values())
        self._kinds, self._kind_w = list(kinds), list(kinds.values())
        self.recent: list[tuple[int, bytes]] = []

    def draw(self) -> tuple[str, int, bytes]:
        kind = self.rng.choices(self._kinds, self._kind_w)[0]
        lines = self.rng.choices(self._sizes, self._size_w)[0]
        if kind == "duplicate" and self.recent:
            lines, body = self.rng.choice(self.recent)
            return kind, lines, body
        if kind == "schema":
            return kind, lines, schema_invalid(lines, self.rng)
        if kind == "business":
            return kind, lines, ceb621(lines, self.rng, broken=True)
        body = ceb621(lines, self.rng)
        self.recent.append((lines, body))
        if len(self.recent) > 200:
            del self.recent[:100]
        return "valid", lines, body


def zip_of(bodies: list[bytes]) -> bytes:
    """A ZIP of XML files, as the batch endpoint takes them."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for i, body in enumerate(bodies):
            zf.writestr(f"doc-{i:04d}.xml", body)
    return buf.getvalue()
