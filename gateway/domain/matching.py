"""Three-document match (三单对碰): an inventory list against its order, payment and waybill.

Pure: the gateway runs it before sending (so a broker sees a mismatch at once, field by
field) and the sandbox customs runs the same rule on what it received. Checks compare only
fields both sides carry, and name the fields in Chinese and English.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from gateway.domain.privacy import mask_name

ROLES = ("order", "payment", "waybill")
# partner message type -> (direction, role)
PARTNER_TYPES: dict[str, tuple[str, str]] = {
    "CEB311": ("I", "order"),
    "CEB411": ("I", "payment"),
    "CEB511": ("I", "waybill"),
    "CEB303": ("E", "order"),
    "CEB403": ("E", "payment"),
    "CEB505": ("E", "waybill"),
}
INVENTORY_DIRECTION = {"CEB621": "I", "CEB603": "E"}
TOLERANCE = Decimal("0.05")
ROLE_ZH = {"order": "订单", "payment": "支付单", "waybill": "运单"}


@dataclass(frozen=True)
class Document:
    """A received document: its message type, head fields and lines."""

    type: str
    head: dict[str, str]
    lines: list[dict[str, str]] = field(default_factory=list)


def partner_key(role: str, head: dict[str, str]) -> tuple[str, str]:
    """How a partner is found: order and payment by (ebpCode, orderNo), waybill by
    (logisticsCode, logisticsNo)."""
    if role == "waybill":
        return head.get("logisticsCode", ""), head.get("logisticsNo", "")
    return head.get("ebpCode", ""), head.get("orderNo", "")


def inventory_keys(inventory: dict[str, str]) -> dict[str, tuple[str, str]]:
    """The partner keys an inventory head points at."""
    return {role: partner_key(role, inventory) for role in ROLES}


@dataclass(frozen=True)
class Partners:
    """The partners of one inventory list found so far."""

    order: Document | None = None
    payment: Document | None = None
    waybill: Document | None = None

    def missing(self) -> list[str]:
        return [role for role in ROLES if getattr(self, role) is None]


@dataclass(frozen=True)
class Mismatch:
    """One disagreement, in both languages; ``field`` is the inventory head field it concerns
    ("" for the goods total), ``partner`` the document that disagrees."""

    zh: str
    en: str
    field: str = ""
    partner: str = ""


def _dec(value: str | None) -> Decimal | None:
    try:
        return Decimal(value) if value and value.strip() else None
    except InvalidOperation:
        return None


def _lines_total(lines: list[dict[str, str]]) -> Decimal | None:
    values = [_dec(line.get("totalPrice")) for line in lines]
    if not values or any(v is None for v in values):
        return None
    return sum((v for v in values if v is not None), Decimal(0))


def _text_differs(a: str | None, b: str | None) -> bool:
    return bool(a and b and a.strip().upper() != b.strip().upper())


def check(inventory: Document, partners: Partners) -> list[Mismatch]:
    """Every disagreement between the inventory list and the partners present."""
    inv, out = inventory.head, []
    order = partners.order
    if order is not None:
        head = order.head
        inv_total = _lines_total(inventory.lines)
        order_total = _dec(head.get("goodsValue")) or _lines_total(order.lines)
        if (
            inv_total is not None
            and order_total is not None
            and abs(inv_total - order_total) > TOLERANCE
        ):
            out.append(
                Mismatch(
                    "清单商品总价与订单商品货值不符",
                    f"inventory goods total {inv_total} does not match order goodsValue "
                    f"{order_total}",
                    "",
                    "order",
                )
            )
        if _text_differs(inv.get("buyerIdNumber"), head.get("buyerIdNumber")):
            out.append(
                Mismatch(
                    "订购人证件号码与订单不符",
                    "inventory buyerIdNumber does not match order buyerIdNumber",
                    "buyerIdNumber",
                    "order",
                )
            )
        if _text_differs(inv.get("buyerName"), head.get("buyerName")):
            out.append(
                Mismatch(
                    "订购人姓名与订单不符",
                    f"inventory buyerName {mask_name(inv.get('buyerName') or '')} does not "
                    f"match order buyerName {mask_name(head.get('buyerName') or '')}",
                    "buyerName",
                    "order",
                )
            )
    payment = partners.payment
    if payment is not None:
        paid = _dec(payment.head.get("amountPaid"))
        actural = _dec(order.head.get("acturalPaid")) if order is not None else None
        if paid is not None and actural is not None and paid != actural:
            out.append(
                Mismatch(
                    "支付金额与订单实付金额不符",
                    f"payment amountPaid {payment.head.get('amountPaid')} does not match "
                    f"order acturalPaid {order.head.get('acturalPaid') if order else ''}",
                    "orderNo",
                    "payment",
                )
            )
        if _text_differs(payment.head.get("payerIdNumber"), inv.get("buyerIdNumber")):
            out.append(
                Mismatch(
                    "支付人证件号码与订购人不符",
                    "payment payerIdNumber does not match inventory buyerIdNumber",
                    "buyerIdNumber",
                    "payment",
                )
            )
    waybill = partners.waybill
    if waybill is not None and _text_differs(waybill.head.get("orderNo"), inv.get("orderNo")):
        out.append(
            Mismatch(
                "运单订单编号与清单不符",
                f"waybill orderNo {waybill.head.get('orderNo')} does not match inventory "
                f"orderNo {inv.get('orderNo')}",
                "logisticsNo",
                "waybill",
            )
        )
    return out


def mismatch_reason(problems: list[Mismatch]) -> str:
    """The 100 receipt's returnInfo for a failed match."""
    zh = "；".join(p.zh for p in problems)
    en = "; ".join(p.en for p in problems)
    return f"三单信息不一致：{zh} / {en}"


def missing_reason(inventory: dict[str, str], missing: list[str]) -> str:
    """The 100 receipt's returnInfo when partners never arrived (strict mode)."""
    keys = inventory_keys(inventory)
    zh = "、".join(ROLE_ZH[r] for r in missing)
    en = ", ".join(f"{r} {keys[r][0]}/{keys[r][1]}" for r in missing)
    return f"三单不齐：缺少{zh} / order, payment or waybill missing: {en}"
