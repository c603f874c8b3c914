"""Business rules (validation layer 3): what the schema cannot say, in plain words.

Each rule has a stable code and an English and a Chinese message, and reads a document as
plain dictionaries (head fields, line fields), so it is testable without XML. Rules skip
fields that are absent: the schema layer reports those.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

IMPORT_TYPES = frozenset({"CEB311", "CEB411", "CEB511", "CEB621", "CEB625"})
SINGLE_TRANSACTION_LIMIT = Decimal("5000")
LINE_TOLERANCE = Decimal("0.05")
CENT = Decimal("0.01")
ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
ID_CHECK = "10X98765432"


@dataclass(frozen=True)
class DocumentView:
    """One document of a message: its head fields and its lines, by element name."""

    message_type: str
    head: dict[str, str]
    lines: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True)
class RuleViolation:
    """A broken rule: where (``line`` None = head), which field, why in two languages."""

    code: str
    field: str  # "" when the rule is about the whole document
    message: str
    message_zh: str
    value: str | None = None
    line: int | None = None  # 1-based index of the list line


Rule = Callable[[DocumentView], Iterator[RuleViolation]]


def _dec(value: str | None) -> Decimal | None:
    if value is None or not value.strip():
        return None
    try:
        number = Decimal(value.strip())
    except InvalidOperation:
        return None
    return number if number.is_finite() else None  # NaN and Infinity are not amounts


def id_check_digit(first17: str) -> str:
    """The GB 11643 check digit (0-9 or X) of an ID number's first 17 digits."""
    return ID_CHECK[sum(int(c) * w for c, w in zip(first17, ID_WEIGHTS, strict=True)) % 11]


def id_card_problem(number: str) -> str | None:
    """Why ``number`` is not a valid 18-character resident ID card number, or None."""
    n = number.strip().upper()
    if len(n) != 18 or not n[:17].isdigit():
        return "must be 18 characters: 17 digits and a check digit (0-9 or X)"
    try:
        dt.date(int(n[6:10]), int(n[10:12]), int(n[12:14]))
    except ValueError:
        return f"contains an impossible birth date {n[6:14]}"
    expected = id_check_digit(n[:17])
    if n[17] != expected:
        return f"has check digit {n[17]}, but the check digit of these 17 digits is {expected}"
    return None


def mask_id(number: str) -> str:
    """Personal data: show only the region prefix and the last four characters."""
    n = number.strip()
    return n[:6] + "*" * max(0, len(n) - 10) + n[-4:] if len(n) > 10 else "*" * len(n)


def _id_cards(doc: DocumentView) -> Iterator[RuleViolation]:
    for type_field, number_field, who_zh in (
        ("buyerIdType", "buyerIdNumber", "订购人"),
        ("payerIdType", "payerIdNumber", "支付人"),
    ):
        number = doc.head.get(number_field)
        if doc.head.get(type_field) == "1" and number:
            problem = id_card_problem(number)
            if problem:
                yield RuleViolation(
                    "idcard.check_digit",
                    number_field,
                    f"{number_field} is not a valid resident ID card number: it {problem}.",
                    f"{who_zh}身份证号码不正确（18位，末位为校验码）。",
                    mask_id(number),
                )


def _hs_codes(doc: DocumentView) -> Iterator[RuleViolation]:
    for i, line in enumerate(doc.lines, start=1):
        code = line.get("gcode")
        if code is not None and not (len(code) == 10 and code.isdigit()):
            yield RuleViolation(
                "hs.code",
                "gcode",
                f"gcode must be a 10-digit HS code; got {code!r}.",
                "商品编码应为10位数字的海关商品编码。",
                code,
                i,
            )


def _line_totals(doc: DocumentView) -> Iterator[RuleViolation]:
    for i, line in enumerate(doc.lines, start=1):
        qty, price, total = (
            _dec(line.get("qty")),
            _dec(line.get("price")),
            _dec(line.get("totalPrice")),
        )
        if qty is None or price is None or total is None:
            continue
        expected = qty * price
        if abs(expected - total) > max(CENT, abs(expected) * LINE_TOLERANCE):
            yield RuleViolation(
                "amount.line_total",
                "totalPrice",
                f"totalPrice {total} does not match qty x price = {qty} x {price} = "
                f"{expected.normalize():f} (5 % tolerance).",
                f"总价{total}与数量×单价（{expected.normalize():f}）不符（允许误差5%）。",
                line.get("totalPrice"),
                i,
            )


def _actural_paid(doc: DocumentView) -> Iterator[RuleViolation]:
    h = doc.head
    values = [
        _dec(h.get(k)) for k in ("goodsValue", "freight", "taxTotal", "discount", "acturalPaid")
    ]
    if any(v is None for v in values):
        return
    goods, freight, tax, discount, paid = values  # type: ignore[misc]
    expected = goods + freight + tax - discount  # type: ignore[operator]
    if abs(expected - paid) > CENT:  # type: ignore[operator]
        yield RuleViolation(
            "amount.actural_paid",
            "acturalPaid",
            f"acturalPaid {paid} must equal goodsValue + freight + taxTotal - discount = "
            f"{goods} + {freight} + {tax} - {discount} = {expected}.",
            f"实际支付金额应等于商品价格＋运杂费＋代扣税款－非现金抵扣金额（{expected}）。",
            h.get("acturalPaid"),
        )


def _goods_value(doc: DocumentView) -> Iterator[RuleViolation]:
    goods = _dec(doc.head.get("goodsValue"))
    totals = [_dec(line.get("totalPrice")) for line in doc.lines]
    if goods is None or not totals or any(t is None for t in totals):
        return
    total = sum(totals, Decimal(0))  # type: ignore[arg-type]
    if abs(total - goods) > CENT:
        yield RuleViolation(
            "amount.goods_value",
            "goodsValue",
            f"goodsValue {goods} must equal the sum of the lines' totalPrice ({total}).",
            f"商品价格应等于表体商品总价之和（{total}）。",
            doc.head.get("goodsValue"),
        )


def _currency(doc: DocumentView) -> Iterator[RuleViolation]:
    if doc.message_type not in IMPORT_TYPES:
        return
    for where, fields in [(None, doc.head), *enumerate(doc.lines, start=1)]:
        value = fields.get("currency")
        if value is not None and value != "142":
            yield RuleViolation(
                "currency.cny",
                "currency",
                f"currency must be 142 (CNY) for cross-border retail imports; got {value!r}.",
                "币制应为142（人民币）。",
                value,
                where,
            )


def _single_transaction_limit(doc: DocumentView) -> Iterator[RuleViolation]:
    if doc.message_type not in ("CEB311", "CEB621"):
        return
    totals = [_dec(line.get("totalPrice")) for line in doc.lines]
    if not totals or any(t is None for t in totals):
        return
    total = sum(totals, Decimal(0))  # type: ignore[arg-type]
    single_item = len(doc.lines) == 1 and _dec(doc.lines[0].get("qty")) == 1
    if total > SINGLE_TRANSACTION_LIMIT and not single_item:
        yield RuleViolation(
            "limit.single_transaction",
            "",
            f"The goods total {total} CNY exceeds the 5,000 CNY single-transaction limit for "
            "cross-border retail imports (only a single indivisible item may exceed it).",
            "商品总价超过跨境电商零售进口单次交易限值5000元（单件不可分割商品除外）。",
            f"{total}",
        )


def _bonded(doc: DocumentView) -> Iterator[RuleViolation]:
    if doc.head.get("tradeMode") != "1210":
        return
    for name, name_zh in (("emsNo", "账册编号"), ("areaCode", "区内企业代码")):
        if not doc.head.get(name):
            yield RuleViolation(
                "bonded.required",
                name,
                f"{name} is required for trade mode 1210 (bonded e-commerce).",
                f"保税电商（1210）清单必须填写{name_zh}。",
            )


def _codes(doc: DocumentView) -> Iterator[RuleViolation]:
    app_type, app_status = doc.head.get("appType"), doc.head.get("appStatus")
    if app_type is not None and app_type not in ("1", "2", "3"):
        yield RuleViolation(
            "head.app_type",
            "appType",
            f"appType must be 1 (new), 2 (change) or 3 (delete); got {app_type!r}.",
            "报送类型应为1-新增、2-变更、3-删除。",
            app_type,
        )
    if app_status is not None and app_status not in ("1", "2"):
        yield RuleViolation(
            "head.app_status",
            "appStatus",
            f"appStatus must be 1 (saved) or 2 (declared); got {app_status!r}.",
            "业务状态应为1-暂存、2-申报。",
            app_status,
        )


_DATE_FIELDS = {
    "appTime": "%Y%m%d%H%M%S",
    "payTime": "%Y%m%d%H%M%S",
    "declTime": "%Y%m%d",
    "ieDate": "%Y%m%d",
}


def _dates(doc: DocumentView) -> Iterator[RuleViolation]:
    for name, fmt in _DATE_FIELDS.items():
        value = doc.head.get(name)
        if not value:
            continue
        try:
            dt.datetime.strptime(value, fmt)
        except ValueError:
            shape = "YYYYMMDDhhmmss" if len(fmt) > 6 else "YYYYMMDD"
            yield RuleViolation(
                "date.invalid",
                name,
                f"{name} {value!r} is not a valid date/time ({shape}).",
                f"日期时间格式不正确，应为{shape}。",
                value,
            )


RULES: tuple[Rule, ...] = (
    _codes,
    _dates,
    _id_cards,
    _hs_codes,
    _line_totals,
    _goods_value,
    _actural_paid,
    _currency,
    _single_transaction_limit,
    _bonded,
)


def check_document(doc: DocumentView) -> list[RuleViolation]:
    """Every business rule the document breaks (empty when it passes)."""
    return [v for rule in RULES for v in rule(doc)]
