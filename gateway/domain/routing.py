"""Routing: which authorities must see a document. A rule table, set in configuration.

Customs sees every document. Inspection & quarantine sees an inventory list when one of its
lines' HS codes starts with a configured prefix (food, animal and plant products, cosmetics).
The port gets a manifest for the consignments of inventory lists, and later one release.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.domain.statuses import Authority


@dataclass(frozen=True)
class RoutingRules:
    """The configured routing table."""

    inspection_hs_prefixes: tuple[str, ...] = ()
    port_types: frozenset[str] = frozenset({"CEB621", "CEB603"})

    def clearance_routes(self, message_type: str, hs_codes: Iterable[str]) -> list[Authority]:
        """The authorities whose clearance a document needs, customs first."""
        routes = [Authority.CUSTOMS]
        if message_type in self.port_types and any(
            code.startswith(self.inspection_hs_prefixes) for code in hs_codes if code
        ):
            routes.append(Authority.INSPECTION)
        return routes

    def needs_port(self, message_type: str) -> bool:
        """Whether the port gets a manifest and, once cleared, a release."""
        return message_type in self.port_types
