"""The authorities' risk model: channel selection by credit tier and random rates, the
inspection & quarantine rate, the hold rate and the three-document match mode; from settings,
overridable at run time so tests can force any outcome (rates 0 and 1 are deterministic)."""

from __future__ import annotations

import math
import random
import threading
from dataclasses import asdict, dataclass, replace
from typing import Any

from gateway.settings import Settings
from sandbox.faults import BadAdminInput

MATCH_MODES = ("present", "strict", "off")
GENERAL = "general"


def parse_pairs(text: str, what: str) -> dict[str, str]:
    """``"a=x,b=y"`` as a dict (settings such as credit tiers and inspection rates)."""
    out: dict[str, str] = {}
    for part in text.split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"{what}: expected name=value, got {part.strip()!r}")
        out[key.strip()] = value.strip()
    return out


@dataclass(frozen=True)
class RiskConfig:
    """Everything the risk model decides by."""

    tier_rates: dict[str, float]
    tiers: dict[str, str]  # enterprise code -> tier
    ciq_rate: float
    hold_rate: float
    match_mode: str
    match_timeout: float
    customs_rate: float | None = None  # overrides the tier rates when set

    @classmethod
    def from_settings(cls, settings: Settings) -> RiskConfig:
        rates = {
            k: float(v)
            for k, v in parse_pairs(
                settings.sandbox_inspection_rates, "sandbox_inspection_rates"
            ).items()
        }
        mode = settings.sandbox_match_mode.strip().lower()
        if mode not in MATCH_MODES:
            raise ValueError(f"sandbox_match_mode must be one of {', '.join(MATCH_MODES)}")
        return cls(
            tier_rates=rates,
            tiers=parse_pairs(settings.sandbox_credit_tiers, "sandbox_credit_tiers"),
            ciq_rate=settings.sandbox_ciq_rate,
            hold_rate=settings.sandbox_hold_rate,
            match_mode=mode,
            match_timeout=settings.sandbox_match_timeout,
        )

    def tier_of(self, codes: list[str]) -> str:
        """The tier of the first listed code (agentCode, then ebpCode, ...), else general."""
        for code in codes:
            if code and code in self.tiers:
                return self.tiers[code]
        return GENERAL

    def customs_rate_for(self, tier: str) -> float:
        if self.customs_rate is not None:
            return self.customs_rate
        return self.tier_rates.get(tier, self.tier_rates.get(GENERAL, 0.0))


def _rate(body: dict[str, Any], name: str) -> float:
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        raise BadAdminInput(f"{name} must be a number between 0 and 1")
    if not 0.0 <= value <= 1.0:
        raise BadAdminInput(f"{name} must be between 0 and 1")
    return float(value)


class Risk:
    """The live risk model: settings plus admin overrides, one random source; thread-safe."""

    def __init__(self, settings: Settings, rng: random.Random | None = None) -> None:
        self._base = RiskConfig.from_settings(settings)
        self._config = self._base
        self._lock = threading.Lock()
        self._rng = rng or random.Random()  # simulation, not security

    @property
    def config(self) -> RiskConfig:
        with self._lock:
            return self._config

    def reset(self) -> None:
        with self._lock:
            self._config = self._base

    def update(self, body: Any) -> RiskConfig:
        """Apply an admin request; raises BadAdminInput naming the bad field."""
        if not isinstance(body, dict):
            raise BadAdminInput("expected a JSON object")
        known = {"customs_rate", "ciq_rate", "hold_rate", "match_mode", "match_timeout", "seed"}
        unknown = sorted(set(body) - known)
        if unknown:
            raise BadAdminInput(f"unknown risk fields: {', '.join(unknown)}")
        changes: dict[str, Any] = {}
        for name in ("ciq_rate", "hold_rate"):
            if name in body:
                changes[name] = _rate(body, name)
        if "customs_rate" in body:
            changes["customs_rate"] = (
                None if body["customs_rate"] is None else _rate(body, "customs_rate")
            )
        if "match_mode" in body:
            if body["match_mode"] not in MATCH_MODES:
                raise BadAdminInput(f"match_mode must be one of {', '.join(MATCH_MODES)}")
            changes["match_mode"] = body["match_mode"]
        if "match_timeout" in body:
            value = body["match_timeout"]
            if (
                isinstance(value, bool)
                or not isinstance(value, int | float)
                or not (0 <= value <= 86400)
            ):
                raise BadAdminInput("match_timeout must be seconds between 0 and 86400")
            changes["match_timeout"] = float(value)
        if "seed" in body and not isinstance(body["seed"], int):
            raise BadAdminInput("seed must be an integer")
        with self._lock:
            if "seed" in body:
                self._rng.seed(body["seed"])
            self._config = replace(self._config, **changes)
            return self._config

    def snapshot(self) -> dict[str, Any]:
        return asdict(self.config)

    def _chance(self, rate: float) -> bool:
        if rate <= 0.0:
            return False
        if rate >= 1.0:
            return True
        with self._lock:
            return self._rng.random() < rate

    def customs_selects(self, codes: list[str]) -> tuple[bool, str]:
        """Whether customs inspects (channel selection), and the declarant's tier."""
        config = self.config
        tier = config.tier_of(codes)
        return self._chance(config.customs_rate_for(tier)), tier

    def ciq_selects(self) -> bool:
        return self._chance(self.config.ciq_rate)

    def holds(self) -> bool:
        """After an inspection: hold (501) rather than release."""
        return self._chance(self.config.hold_rate)
