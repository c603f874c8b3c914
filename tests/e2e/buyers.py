"""Synthetic buyers (valid ID card numbers, phones, names, addresses) and their CEB621 lists,
for the personal-data leak and masking tests."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from gateway.domain.rules import ID_CHECK, ID_WEIGHTS
from gateway.examples import fresh_ceb621
from schemas.registry import CEB_NS

_Q = f"{{{CEB_NS}}}"
_SURNAMES = "王李张刘陈杨黄赵吴周"


@dataclass(frozen=True)
class Buyer:
    id_number: str
    phone: str
    name: str
    address: str


def synthetic_buyer(i: int) -> Buyer:
    """Buyer ``i``: an ID card number with a correct check digit, a mobile number, a name."""
    body = f"330106{1970 + i % 40:04d}{1 + i % 12:02d}{1 + i % 28:02d}{i % 1000:03d}"
    check = ID_CHECK[sum(int(c) * w for c, w in zip(body, ID_WEIGHTS, strict=True)) % 11]
    return Buyer(
        id_number=body + check,
        phone=f"139{57000000 + i * 7919 % 10_000_000:08d}",
        name=_SURNAMES[i % 10] + "测试" + "甲乙丙丁戊"[i % 5],
        address=f"浙江省杭州市西湖区隐私路{i}号{i % 7}幢",
    )


def ceb621_for(buyer: Buyer) -> bytes:
    """A fresh, valid CEB621 whose buyer (and consignee) is ``buyer``."""
    root = etree.fromstring(fresh_ceb621())
    head = root.find(f"{_Q}Inventory/{_Q}InventoryHead")
    assert head is not None
    for field, value in (
        ("buyerIdNumber", buyer.id_number),
        ("buyerTelephone", buyer.phone),
        ("buyerName", buyer.name),
        ("consigneeAddress", buyer.address),
    ):
        el = head.find(f"{_Q}{field}")
        assert el is not None, field
        el.text = value
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
