"""The access policy in the pure domain: the role table, the visibility rule, passwords."""

from __future__ import annotations

import pytest

from gateway.domain.access import CAPABILITIES, Capability, Role, Viewer, can, require
from gateway.domain.errors import PermissionDenied
from gateway.domain.passwords import hash_password, password_problem, verify_password
from gateway.persistence.visibility import party_rows

DECLARING = {Capability.DECLARE, Capability.CANCEL, Capability.SUMMARISE}


def test_every_role_has_a_row_and_only_sellers_and_brokers_declare():
    assert set(CAPABILITIES) == set(Role)
    for role in Role:
        declares = {c for c in DECLARING if can(role, c)}
        assert declares == (DECLARING if role in (Role.SELLER, Role.BROKER) else set()), role
        assert can(role, Capability.READ) and can(role, Capability.VALIDATE)
    assert [r for r in Role if can(r, Capability.READ_ALL)] == [Role.ADMIN]


def test_an_unknown_role_may_do_nothing():
    assert not any(can("superuser", c) for c in Capability)


def test_a_refusal_names_the_role_and_who_may():
    with pytest.raises(PermissionDenied) as err:
        require("port", Capability.DECLARE)
    assert err.value.status == 403
    assert err.value.extra == {"role": "port", "capability": "declare"}
    assert "seller, broker" in err.value.detail


def test_a_viewer_sees_its_own_and_those_naming_one_of_its_codes():
    broker = Viewer.of("org_a", "broker", ("1105910159",))
    assert broker.sees("org_a", [])
    assert broker.sees("org_b", ["3301960001", "1105910159"])
    assert not broker.sees("org_b", ["3301960001"])
    assert Viewer.of("org_x", "admin").sees("org_b", [])
    assert not Viewer.of("org_x", "authority").sees("org_b", [])


def test_party_rows_are_one_per_distinct_code():
    rows = party_rows([{"id": "d1", "codes": ["B", "A", "B", ""]}, {"id": "d2", "codes": []}])
    assert rows == [{"code": "A", "declaration_id": "d1"}, {"code": "B", "declaration_id": "d1"}]


def test_a_password_verifies_only_against_its_own_hash():
    stored = hash_password("correct horse battery", n=2**10)
    assert stored.startswith("scrypt$1024$8$1$")
    assert verify_password("correct horse battery", stored)
    assert not verify_password("correct horse batterY", stored)
    assert hash_password("correct horse battery", n=2**10) != stored  # salted


@pytest.mark.parametrize("stored", ["", "plain", "scrypt$x$8$1$00$00", "bcrypt$1$2$3$00$00"])
def test_a_malformed_hash_never_matches(stored: str):
    assert not verify_password("anything", stored)


def test_short_passwords_are_refused():
    assert password_problem("short") is not None
    assert password_problem("long enough password") is None
