"""Personal data: the masks, the rule for who sees it whole, and free-text redaction."""

from __future__ import annotations

from lxml import etree

from gateway.domain.privacy import (
    mask_address,
    mask_field,
    mask_name,
    mask_phone,
    redact_text,
    sees_personal_data,
)
from gateway.examples import fresh_ceb621
from gateway.xml.masking import agent_codes, masked_copy
from schemas.registry import CEB_NS, get_spec

_Q = f"{{{CEB_NS}}}"


def test_each_kind_of_personal_data_has_its_mask() -> None:
    assert mask_field("buyerIdNumber", "11010519491231002X") == "110105********002X"
    assert mask_phone("13800138000") == "138****8000"
    assert mask_name("张三") == "张*" and mask_name("欧阳娜娜") == "欧***"
    assert mask_address("北京市朝阳区示例路1号") == "北京市****"
    assert mask_field("orderNo", "ORD1") == "ORD1"  # not personal data


def test_the_declarant_and_the_broker_named_by_agent_code_see_it_whole_nobody_else() -> None:
    assert sees_personal_data("org_a", (), "org_a", ())
    assert sees_personal_data("org_b", ("1105910159",), "org_a", ["1105910159"])
    assert not sees_personal_data("org_b", ("46121601BC",), "org_a", ["1105910159"])
    assert not sees_personal_data("org_b", ("",), "org_a", [""])


def test_free_text_loses_id_card_and_mobile_numbers_but_keeps_other_numbers() -> None:
    text = (
        "buyer 11010519491231002X phone 13800138000 order ORD202611230001 invt 46012026I000000005"
    )
    out = redact_text(text)
    assert "11010519491231002X" not in out and "13800138000" not in out
    assert "110105********002X" in out and "138****8000" in out
    assert "ORD202611230001" in out and "46012026I000000005" in out
    kept = "preNo B20261123000000004 dsp_13800138000ab 1380013800012 110105194912310021X"
    assert redact_text(kept) == kept  # numbers inside longer runs are not personal data


def test_a_masked_copy_hides_every_personal_field_and_leaves_the_rest() -> None:
    root = etree.fromstring(fresh_ceb621(documents=2, buyer_id="11010519491231002X"))
    spec = get_spec("CEB621")
    assert agent_codes(root, spec) == {1: "1105910159", 2: "1105910159"}
    masked = masked_copy(root, spec, whole={2})
    first, second = masked.findall(f"{_Q}Inventory/{_Q}InventoryHead")
    assert first.findtext(f"{_Q}buyerIdNumber") == "110105********002X"
    assert first.findtext(f"{_Q}buyerTelephone") == "138****8000"
    assert first.findtext(f"{_Q}buyerName") == "张*"
    assert first.findtext(f"{_Q}orderNo") == root.findtext(
        f"{_Q}Inventory/{_Q}InventoryHead/{_Q}orderNo"
    )
    assert second.findtext(f"{_Q}buyerIdNumber") == "11010519491231002X"  # kept whole
    original = root.find(f"{_Q}Inventory/{_Q}InventoryHead/{_Q}buyerIdNumber")
    assert original is not None and original.text == "11010519491231002X"  # copy only


def test_log_lines_and_tracebacks_lose_id_and_phone_numbers(caplog) -> None:  # type: ignore[no-untyped-def]
    import logging

    from gateway.log_redaction import install_log_redaction

    install_log_redaction()
    log = logging.getLogger("gateway.test")
    with caplog.at_level(logging.INFO, logger="gateway.test"):
        log.info("buyer %s phone %s", "11010519491231002X", "13800138000")
        try:
            raise ValueError("bad id 11010519491231002X")
        except ValueError:
            log.exception("failed for %s", "13800138000")
    text = caplog.text + "".join(r.exc_text or "" for r in caplog.records)
    assert "11010519491231002X" not in text and "13800138000" not in text
    assert "110105********002X" in text and "138****8000" in text
