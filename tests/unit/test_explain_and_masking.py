"""Rejections explained next to the field at fault, and personal data masked in free text."""

from __future__ import annotations

from gateway.domain.explain import explain
from gateway.domain.masking import mask_text, mask_value, masked
from gateway.domain.matching import Document, Partners, check, mismatch_reason, missing_reason
from gateway.domain.rules import DocumentView, check_document

INVENTORY_FIELDS = ("orderNo", "logisticsNo", "buyerIdNumber", "buyerName", "totalPrice")


def test_a_logic_failure_names_each_field_in_both_languages():
    view = DocumentView(
        "CEB621",
        {"buyerIdType": "1", "buyerIdNumber": "110105194912310021", "currency": "142"},
        [{"gnum": "1", "qty": "2", "price": "198.00", "totalPrice": "496.00"}],
    )
    broken = check_document(view)
    info = (
        "逻辑校验失败：" + "；".join(v.message_zh for v in broken)
        + " / logic check failed: " + "; ".join(v.message for v in broken)
    )  # fmt: skip
    ex = explain("100", info, INVENTORY_FIELDS)
    assert ex.headline_en == "Customs' logic check failed"
    assert [r.field for r in ex.reasons] == [v.field for v in broken]
    assert all(r.zh and r.en for r in ex.reasons)
    assert "110105194912310021" not in str(ex)


def test_a_three_document_mismatch_points_at_the_field_and_hides_the_names():
    inventory = Document("CEB621", {"orderNo": "O1", "buyerName": "李四"}, [])
    order = Document("CEB311", {"orderNo": "O1", "buyerName": "张三"}, [])
    ex = explain("100", mismatch_reason(check(inventory, Partners(order=order))), INVENTORY_FIELDS)
    (reason,) = ex.reasons
    assert reason.field == "buyerName" and reason.zh == "订购人姓名与订单不符"
    assert "李四" not in reason.en and "张三" not in reason.en and "李*" in reason.en
    assert ex.advice_zh.startswith("请核对订单")


def test_missing_partners_signature_failures_and_detentions_have_their_own_advice():
    missing = explain("100", missing_reason({"orderNo": "O1"}, ["payment"]), INVENTORY_FIELDS)
    assert missing.headline_zh == "三单不齐" and missing.reasons[0].field == ""  # the document
    unsigned = explain("100", "验签失败 / sender X has no registered signing certificate")
    assert "certificate" in unsigned.advice_en and unsigned.reasons[0].field == ""
    assert explain("501", "扣留 / held after inspection").headline_en == "Detained after inspection"
    assert explain("format", "报文格式错误").headline_zh == "报文格式错误"
    plain = explain("100", "订单已存在")  # Chinese only, as real customs answers
    assert plain.reasons[0].zh == "订单已存在" and plain.reasons[0].en == ""


def test_personal_fields_are_masked_and_others_kept():
    head = masked(
        {
            "buyerIdNumber": "11010519491231002X",
            "buyerTelephone": "13800138000",
            "buyerName": "张三",
            "consigneeAddress": "北京市朝阳区示例路1号",
            "orderNo": "ORD1",
        }
    )
    assert head == {
        "buyerIdNumber": "110105********002X",
        "buyerTelephone": "138******00",
        "buyerName": "张*",
        "consigneeAddress": "北京市朝阳区…****",
        "orderNo": "ORD1",
    }
    assert mask_value("payerName", "") == ""
    text = mask_text("buyer 11010519491231002X tel 13800138000; consignee 王五 at x")
    assert "11010519491231002X" not in text and "13800138000" not in text and "王五" not in text
    assert mask_text("invtNo 46012026I000000005, preNo B20261123000000004") == (
        "invtNo 46012026I000000005, preNo B20261123000000004"
    )
