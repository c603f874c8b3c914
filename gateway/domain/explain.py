"""Rejections in plain language, Chinese and English, next to the field at fault.

An authority's rejection (receipt 100, a format error, a detention) arrives as one
``returnInfo`` text, Chinese then English after " / ", each reason separated by "；" / "; "
(our sandbox and rules speak this way; real customs texts are Chinese only). Each reason is
attributed to the first document field it names, and the kind of rejection gets advice.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from gateway.domain.masking import mask_text

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9]+")


@dataclass(frozen=True)
class Reason:
    """One reason a document was refused: the field it concerns ("" = the whole document)."""

    field: str
    zh: str
    en: str


@dataclass(frozen=True)
class Explanation:
    """What went wrong, what to do about it, and each reason by field."""

    headline_zh: str
    headline_en: str
    advice_zh: str
    advice_en: str
    reasons: tuple[Reason, ...]


# returnInfo prefix -> (headline zh, headline en, advice zh, advice en)
KINDS: tuple[tuple[str, tuple[str, str, str, str]], ...] = (
    (
        "逻辑校验失败",
        (
            "海关逻辑校验未通过",
            "Customs' logic check failed",
            "请按下列字段更正后重新申报（新的 guid 与企业内部编号）。",
            "Correct the fields named below and declare again (a new guid and copNo).",
        ),
    ),
    (
        "三单信息不一致",
        (
            "三单对碰不一致",
            "Order, payment and waybill disagree with the list",
            "请核对订单、支付单、运单与清单的对应字段，更正有误的单证后重新申报清单。",
            "Check the order, payment and waybill against the list; correct the document at "
            "fault, then declare the list again.",
        ),
    ),
    (
        "三单不齐",
        (
            "三单不齐",
            "Order, payment or waybill missing",
            "请先申报缺少的订单、支付单或运单，再重新申报清单。",
            "Declare the missing order, payment or waybill, then declare the list again.",
        ),
    ),
    (
        "验签失败",
        (
            "电子签名验证失败",
            "The signature could not be verified",
            "请向海关备案您的签名证书（或检查所用密钥），然后重新申报。",
            "Register your signing certificate with customs (or check the key used), then "
            "declare again.",
        ),
    ),
)
FORMAT = (
    "报文格式错误",
    "The message was refused for its format",
    "请按原因更正报文后重新申报。",
    "Correct the message as the reason says and declare again.",
)
GENERIC = (
    "申报被退回",
    "The declaration was rejected",
    "请按原因更正后重新申报。",
    "Correct what the reason names and declare again.",
)
HELD = (
    "查验后扣留",
    "Detained after inspection",
    "货物被扣留，请联系现场海关或检验检疫部门处理。",
    "The goods are detained: contact the customs or inspection office on site.",
)


def _split(info: str) -> tuple[str, str]:
    zh, sep, en = info.partition(" / ")
    if not sep:
        ascii_only = all(ord(c) < 128 for c in info)
        return ("", info) if ascii_only else (info, "")
    return zh.strip(), en.strip()


EN_LEADS = ("logic check failed: ",)


def _pieces(text: str, separator: str) -> list[str]:
    if separator == "；":
        lead, colon, rest = text.partition("：")
        body = rest if colon and len(lead) <= 12 else text
    else:
        body = next((text[len(lead) :] for lead in EN_LEADS if text.startswith(lead)), text)
    return [p.strip() for p in body.split(separator) if p.strip()]


def _field_of(text: str, fields: frozenset[str]) -> str:
    for word in _WORD.findall(text):
        if word in fields:
            return word
    return ""


def explain(code: str, info: str, fields: Iterable[str] = ()) -> Explanation:
    """Explain an authority's rejection ``code``/``info`` against a document's ``fields``."""
    known = frozenset(fields)
    zh, en = _split(info or "")
    if code.isdigit() and 501 <= int(code) <= 599:
        kind = HELD
    elif code == "format":
        kind = FORMAT
    else:
        kind = next((k for prefix, k in KINDS if zh.startswith(prefix)), GENERIC)
    zh_parts, en_parts = _pieces(zh, "；"), _pieces(en, "; ")
    count = max(len(zh_parts), len(en_parts))
    reasons = []
    for i in range(count):
        z = zh_parts[i] if i < len(zh_parts) else ""
        e = en_parts[i] if i < len(en_parts) else ""
        reasons.append(Reason(_field_of(e, known), mask_text(z), mask_text(e)))
    return Explanation(*kind, reasons=tuple(reasons))
