"""Who may do what: roles, their capabilities, and whose declarations a caller sees.

One explicit table (``CAPABILITIES``) decides every role check, so a reviewer reads the
whole policy in one place and a unit test can walk it. Visibility (DESIGN.md §5): an
organisation sees a declaration it submitted, or one in which one of its registered codes
appears as a party; an ``admin`` (the gateway's operator) sees every declaration.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from gateway.domain.errors import PermissionDenied

# Document fields that name a party to a declaration (plus the sender's BaseTransfer copCode).
PARTY_FIELDS = ("ebpCode", "ebcCode", "agentCode", "logisticsCode", "payCode", "copCode")


class Role(StrEnum):
    """The role an API key or a user carries."""

    SELLER = "seller"  # an e-commerce enterprise or platform declaring its own trade
    BROKER = "broker"  # a customs broker declaring for its clients
    PORT = "port"  # a port or terminal system integrating machine to machine
    AUTHORITY = "authority"  # customs, inspection & quarantine: read-only on what names them
    ADMIN = "admin"  # the gateway's operator: reads everything, declares nothing


class Capability(StrEnum):
    """Things a caller can ask the gateway to do."""

    DECLARE = "declare"  # submit a message (also batch uploads)
    CANCEL = "cancel"  # declare the cancellation of an inventory list
    SUMMARISE = "summarise"  # declare a month's export summary applications
    READ = "read"  # list and read declarations, their signed and declared messages
    VALIDATE = "validate"  # the validation report, no side effects
    READ_ALL = "read_all"  # see every organisation's declarations, not only one's own


CAPABILITIES: dict[Role, frozenset[Capability]] = {
    Role.SELLER: frozenset(
        {Capability.DECLARE, Capability.CANCEL, Capability.SUMMARISE}
        | {Capability.READ, Capability.VALIDATE}
    ),
    Role.BROKER: frozenset(
        {Capability.DECLARE, Capability.CANCEL, Capability.SUMMARISE}
        | {Capability.READ, Capability.VALIDATE}
    ),
    Role.PORT: frozenset({Capability.READ, Capability.VALIDATE}),
    Role.AUTHORITY: frozenset({Capability.READ, Capability.VALIDATE}),
    Role.ADMIN: frozenset({Capability.READ, Capability.VALIDATE, Capability.READ_ALL}),
}


def can(role: str, capability: Capability) -> bool:
    """Whether ``role`` may do ``capability``; unknown roles may do nothing."""
    try:
        return capability in CAPABILITIES[Role(role)]
    except ValueError:
        return False


def require(role: str, capability: Capability) -> None:
    """Raise PermissionDenied (403) unless ``role`` may do ``capability``."""
    if not can(role, capability):
        raise PermissionDenied(
            f"A {role} key may not {capability.value}; "
            f"roles that may: {', '.join(r.value for r in Role if can(r, capability))}.",
            extra={"role": role, "capability": capability.value},
        )


@dataclass(frozen=True)
class Viewer:
    """Whose declarations a query may return: an organisation, its codes, or everyone."""

    org_id: str
    codes: tuple[str, ...] = ()
    sees_all: bool = False

    @classmethod
    def of(cls, org_id: str, role: str, codes: tuple[str, ...] = ()) -> Viewer:
        """The viewer for a caller of ``role`` in organisation ``org_id``."""
        return cls(org_id, tuple(codes), can(role, Capability.READ_ALL))

    def sees(self, org_id: str, party_codes: tuple[str, ...] | list[str]) -> bool:
        """The rule itself, for one declaration (the database applies the same one)."""
        return self.sees_all or org_id == self.org_id or bool(set(self.codes) & set(party_codes))
