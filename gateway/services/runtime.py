"""What the use cases need from the outside world, bundled once per process by bootstrap."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine

from adapters.base import AuthorityClient
from gateway.domain.routing import RoutingRules
from gateway.domain.tax import TaxRates
from gateway.services.keyring import KeyRing
from gateway.xml.parsing import ParseLimits
from signing.keys import TrustStore
from signing.policy import SignaturePolicy


@dataclass(frozen=True)
class Runtime:
    """Engine, keys, trust stores, authority clients and the doorbell to the workers."""

    engine: Engine
    limits: ParseLimits
    keys: KeyRing  # each organisation's active signing key
    receipt_policy: SignaturePolicy  # what the authorities' receipts must satisfy
    clients: Mapping[str, AuthorityClient]
    trust: Mapping[str, TrustStore]  # authority name -> its receipt certificates
    senders: Mapping[str, str]  # DXP sender id -> authority name
    lease_seconds: int
    doorbell_grace: float
    retry_base_seconds: float
    retry_max_seconds: float
    ring: Callable[[list[str]], None]  # enqueue deliveries after commit (best effort)
    rules: RoutingRules  # which authorities see which document
    gateway_dxp_id: str  # the gateway's own sender id (manifests and releases to the port)
    sign_as_gateway: Callable[[Any], bytes]  # sign a port message with the gateway's key
    tax_rates: TaxRates  # retail-import tax rates by HS code
    quota_secret: bytes  # HMAC key for buyers' quota keys
    annual_quota: Decimal  # per person per year, CNY
    verify_engine: str  # the signature check of receipts and port events (lean, signxml)
