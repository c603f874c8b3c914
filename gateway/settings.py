"""Settings: config/defaults.toml, overridden by GATEWAY_* environment variables.

Resolved once into a frozen ``Settings`` and passed explicitly, so no module reads the
environment behind the caller's back and tests can build any configuration they need.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULTS_FILE = PROJECT_ROOT / "config" / "defaults.toml"


@dataclass(frozen=True)
class Settings:
    """Every knob of the gateway; see config/defaults.toml for meanings and defaults."""

    data_dir: str
    host: str
    port: int
    public_url: str
    database_url: str
    redis_url: str
    queue_name: str
    workers: int
    max_body_bytes: int
    max_xml_depth: int
    demo_api_key: str
    demo_org_name: str
    demo_org_codes: str
    demo_org_dxp_id: str
    keys_dir: str
    receipt_policy: str
    verify_engine: str
    customs_url: str
    customs_dxp_id: str
    customs_cert: str
    inspection_url: str
    inspection_dxp_id: str
    inspection_cert: str
    port_url: str
    port_dxp_id: str
    port_cert: str
    gateway_dxp_id: str
    inspection_hs_prefixes: str
    port_message_types: str
    http_connect_timeout: float
    http_read_timeout: float
    job_timeout: int
    lease_seconds: int
    retry_base_seconds: float
    retry_max_seconds: float
    relay_interval: float
    doorbell_grace: float
    tax_rates_file: str
    annual_quota: str
    quota_secret: str
    poll_interval: float
    breaker_failures: int
    breaker_reset_seconds: float
    sandbox_port: int
    sandbox_delays: str
    sandbox_inspection_delays: str
    sandbox_arrival_delay: float
    sandbox_gate_out_delay: float
    sandbox_inspection_rates: str
    sandbox_credit_tiers: str
    sandbox_ciq_rate: float
    sandbox_hold_rate: float
    sandbox_match_mode: str
    sandbox_match_timeout: float
    webhook_retry_base_seconds: float
    webhook_retry_max_seconds: float
    webhook_max_age_seconds: float
    webhook_timeout: float
    events_settle_seconds: float
    log_format: str
    log_level: str
    log_requests: bool
    health_timeout: float
    health_cache_seconds: float
    notice_cache_seconds: float
    notice_lead_hours: float
    metrics_cache_seconds: float
    web_secret: str
    data_keys: str
    batch_max_bytes: int
    batch_max_items: int
    batch_max_uncompressed_bytes: int
    batch_queue_name: str
    batch_job_timeout: int
    batch_workers: int
    rate_limit: str
    rate_limit_receipts: str
    # rq worker class: "fork" (a work horse per job: isolation, the reliability default) or
    # "simple" (jobs run in the worker process: no fork and no re-import per job).
    worker_class: str = "fork"
    # Dispatches per delivery job (the doorbell of one commit, and the relay's batches).
    delivery_batch: int = 20
    # Of one job's dispatches, how many are on the wire at once (one thread each).
    delivery_concurrency: int = 8
    # How long the relay holds rung dispatches for a fuller job while the workers are busy.
    doorbell_hold: float = 0.25
    # Mutual TLS for the port and the authorities (gateway/tls_listener.py): a second
    # listener on tls_port, served with tls_cert/tls_key, that admits only clients whose
    # certificate tls_client_ca signed; the *_mtls_required switches make it the only way in.
    tls_port: int = 8443
    tls_cert: str = ""
    tls_key: str = ""
    tls_client_ca: str = ""
    port_mtls_required: bool = False
    authority_mtls_required: bool = False
    # Revoked certificate serials per sender (a file: one hex serial a line, '#' comments);
    # empty: none revoked.
    customs_revoked: str = ""
    inspection_revoked: str = ""
    port_revoked: str = ""

    @property
    def data_path(self) -> Path:
        """The data directory as an absolute path."""
        p = Path(self.data_dir)
        return p if p.is_absolute() else PROJECT_ROOT / p

    def path(self, relative: str) -> Path:
        """A path under the data directory (absolute paths are kept)."""
        p = Path(relative)
        return p if p.is_absolute() else self.data_path / p

    @property
    def keys_path(self) -> Path:
        return self.path(self.keys_dir)

    @property
    def registered_path(self) -> Path:
        """Certificates registered per sender (DXP id), as the authorities know them."""
        return self.keys_path / "registered"

    @property
    def db_url(self) -> str:
        """The SQLAlchemy URL; SQLite in the data directory unless configured."""
        return self.database_url or f"sqlite:///{self.data_path / 'gateway.db'}"

    @property
    def receipt_url(self) -> str:
        """Where authorities POST their receipts."""
        base = self.public_url or f"http://{self.host}:{self.port}"
        return base.rstrip("/") + "/api/v1/receipts"

    def endpoint(self, authority: str) -> str:
        """An authority's DXP endpoint; the sandbox's unless configured."""
        configured = getattr(self, f"{authority}_url")
        return configured or f"http://127.0.0.1:{self.sandbox_port}/{authority}/dxp"

    @property
    def customs_endpoint(self) -> str:
        return self.endpoint("customs")

    @property
    def inspection_prefixes(self) -> tuple[str, ...]:
        return tuple(p.strip() for p in self.inspection_hs_prefixes.split(",") if p.strip())

    @property
    def tax_rates_path(self) -> Path:
        return (
            Path(self.tax_rates_file)
            if self.tax_rates_file
            else PROJECT_ROOT / "config" / "tax_rates.toml"
        )

    def quota_secret_bytes(self) -> bytes:
        """The HMAC key for buyer ids: configured, or kept in the data dir (made once)."""
        return self.kept_secret("quota-secret", self.quota_secret)

    def kept_secret(self, name: str, configured: str) -> bytes:
        """``configured``, else a random secret kept in the data dir as ``name`` (0600). It
        is written whole to a temporary file and then linked into place, so a process
        starting at the same moment reads either nothing or the whole secret, never half."""
        if configured:
            return configured.encode()
        import os
        import secrets

        path = self.data_path / name
        if not path.exists():
            self.data_path.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{name}.{os.getpid()}.tmp")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
            try:
                os.link(tmp, path)  # fails if another process linked its secret first
            except FileExistsError:
                pass
            finally:
                os.unlink(tmp)
        return path.read_text().strip().encode()

    @property
    def data_keys_file(self) -> Path:
        """Where the data keys are kept when GATEWAY_DATA_KEYS is not set."""
        return self.data_path / "data-keys"

    @property
    def port_types(self) -> frozenset[str]:
        return frozenset(t.strip() for t in self.port_message_types.split(",") if t.strip())

    @property
    def demo_codes(self) -> list[str]:
        return [c.strip() for c in self.demo_org_codes.split(",") if c.strip()]

    @property
    def sandbox_delay_list(self) -> list[float]:
        return [float(x) for x in self.sandbox_delays.split(",") if x.strip()]


def _coerce(value: str, like: Any) -> Any:
    if isinstance(like, bool):
        return value.strip().lower() in {"1", "true", "yes", "on"}
    if isinstance(like, int):
        return int(value)
    if isinstance(like, float):
        return float(value)
    return value


def load_settings(env: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
    """Read the defaults file, apply GATEWAY_* variables, then explicit overrides."""
    env = os.environ if env is None else env
    with DEFAULTS_FILE.open("rb") as fh:
        values: dict[str, Any] = tomllib.load(fh)
    known = {f.name for f in fields(Settings)}
    unknown = set(values) - known
    if unknown:
        raise ValueError(f"unknown settings in {DEFAULTS_FILE}: {sorted(unknown)}")
    for name in known:
        raw = env.get(f"GATEWAY_{name.upper()}")
        if raw is not None:
            values[name] = _coerce(raw, values[name])
    settings = Settings(**values)
    return replace(settings, **overrides) if overrides else settings
