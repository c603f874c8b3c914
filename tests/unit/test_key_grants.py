"""Which roles a caller may hand out as API keys: never more than its own rights."""

from __future__ import annotations

import pytest

from gateway.domain.access import CAPABILITIES, Role
from gateway.domain.errors import PermissionDenied
from gateway.domain.key_grants import grantable_roles, require_grant
from gateway.domain.reasons_zh import zh_reason


def test_no_role_grants_a_right_it_does_not_have():
    for role in Role:
        for granted in grantable_roles(role):
            assert CAPABILITIES[Role(granted)] <= CAPABILITIES[role], (role, granted)


def test_only_an_admin_grants_admin_and_an_admin_grants_no_declaring_role():
    assert [r for r in Role if "admin" in grantable_roles(r)] == [Role.ADMIN]
    assert grantable_roles("admin") == ("port", "authority", "admin")
    assert grantable_roles("broker") == ("seller", "broker", "port", "authority")
    assert grantable_roles("port") == ("port", "authority")
    assert grantable_roles("nobody") == ()


def test_require_grant_refuses_with_a_403_naming_what_is_allowed():
    require_grant("broker", "seller")
    with pytest.raises(PermissionDenied, match="may manage: port, authority"):
        require_grant("port", "broker")
    with pytest.raises(PermissionDenied):
        require_grant("broker", "god")


def test_a_reason_in_chinese_for_english_only_codes():
    assert zh_reason("schema.fixed_value", "currency") == "currency：取值必须为规定的固定值"
    assert zh_reason("schema.something_new") == "不符合报文格式规范（XSD）"
    assert zh_reason("unknown.code", "x") == ""
