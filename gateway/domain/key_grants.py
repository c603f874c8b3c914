"""Which roles a caller may give the API keys it creates (or revoke): never more than it has.

A key's role decides what it may do, so a signed-in user handing out keys could otherwise
lift itself: a port user minting a broker key that declares. The rule: a caller may grant a
role whose capabilities are all its own, and only an admin grants admin (reading every
organisation's declarations is the operator's alone).
"""

from __future__ import annotations

from gateway.domain.access import CAPABILITIES, Role
from gateway.domain.errors import PermissionDenied


def grantable_roles(role: str) -> tuple[str, ...]:
    """The roles a caller of ``role`` may give a key, in Role order; none for unknown roles."""
    try:
        mine = CAPABILITIES[Role(role)]
    except ValueError:
        return ()
    return tuple(r.value for r in Role if CAPABILITIES[r] <= mine)


def require_grant(role: str, wanted: str) -> None:
    """PermissionDenied (403) unless a caller of ``role`` may grant (or revoke) ``wanted``."""
    allowed = grantable_roles(role)
    if wanted not in allowed:
        raise PermissionDenied(
            f"A {role} may not manage {wanted} keys; it may manage: "
            f"{', '.join(allowed) or 'none'}.",
            extra={"role": role, "wanted": wanted},
        )
