"""The database schema (SQLAlchemy Core). Migrations in migrations/ create exactly this.

Declarations, their messages (raw and signed bytes), per-authority statuses, the append-only
event log, dispatches (the outbox: one row per message and authority, claimed with a lease)
and receipts (deduplicated by fingerprint).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

organisations = Table(
    "organisations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("name", String(200), nullable=False),
    Column("codes", JSON, nullable=False),
    Column("dxp_id", String(40), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), ForeignKey("organisations.id"), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("prefix", String(16), nullable=False),
    Column("role", String(20), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Column("name", String(80)),  # a label the operator chose ("erp", "dashboard", ...)
    Column("last_used_at", DateTime(timezone=True)),  # refreshed at most once a minute
    Index("ix_api_keys_org", "org_id"),
)

org_keys = Table(
    "org_keys",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), ForeignKey("organisations.id"), nullable=False),
    Column("key_name", String(80), nullable=False),  # certificate serial, hex
    Column("key_type", String(8), nullable=False),  # rsa | ec | sm2
    Column("provider", String(10), nullable=False),  # file | pkcs12 | pkcs11
    Column("config", JSON, nullable=False),  # paths, env var names, token labels; no secrets
    Column("cert_pem", Text, nullable=False),
    Column("not_before", DateTime(timezone=True), nullable=False),
    Column("not_after", DateTime(timezone=True), nullable=False),
    Column("status", String(10), nullable=False),  # active | retired
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("retired_at", DateTime(timezone=True)),
    Index(
        "uq_org_keys_one_active",
        "org_id",
        unique=True,
        sqlite_where=text("status = 'active'"),
        postgresql_where=text("status = 'active'"),
    ),
)

messages = Table(
    "messages",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), ForeignKey("organisations.id"), nullable=False),
    Column("type", String(10), nullable=False),
    Column("guid", String(64), nullable=False, unique=True),
    Column("version", String(10), nullable=False),
    Column("idempotency_key", String(200)),
    Column("body_hash", String(64), nullable=False),
    Column("raw_xml", LargeBinary, nullable=False),
    Column("signed_xml", LargeBinary, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("org_id", "idempotency_key"),
)

declarations = Table(
    "declarations",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("message_id", String(40), ForeignKey("messages.id"), nullable=False),
    Column("org_id", String(40), ForeignKey("organisations.id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("type", String(10), nullable=False),
    Column("doc_guid", String(64), nullable=False),
    Column("status", String(20), nullable=False),
    Column("order_no", String(60)),
    Column("logistics_no", String(60)),
    Column("cop_no", String(30)),
    Column("business_key", String(200)),
    Column("app_type", String(1), nullable=False, server_default="1"),
    Column("requires_arrival", Integer, nullable=False, server_default="0"),
    Column("buyer_key", String(64)),  # HMAC of the buyer's ID: the quota is per person
    Column("tax", JSON),  # {"estimate": {...}, "bill": {...}}
    Column("arrived_at", DateTime(timezone=True)),
    Column("released_at", DateTime(timezone=True)),
    Column("gate_out_at", DateTime(timezone=True)),
    Column("pre_no", String(30)),
    Column("invt_no", String(30)),
    Column("codes", JSON, nullable=False),
    Column("routes", JSON, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("type", "doc_guid"),
    Index("ix_declarations_org_created", "org_id", "created_at"),
    Index("ix_declarations_message", "message_id"),
    Index("ix_declarations_business_key", "business_key"),
    Index("ix_declarations_logistics_no", "logistics_no"),
    Index("ix_declarations_invt_no", "invt_no"),
    # Declare once: one open (not rejected, not cancelled) declaration per business key.
    Index(
        "uq_declarations_open_business_key",
        "business_key",
        unique=True,
        sqlite_where=text("status NOT IN ('rejected', 'cancelled')"),
        postgresql_where=text("status NOT IN ('rejected', 'cancelled')"),
    ),
)

authority_statuses = Table(
    "authority_statuses",
    metadata,
    Column("declaration_id", String(40), ForeignKey("declarations.id"), primary_key=True),
    Column("authority", String(20), primary_key=True),
    Column("phase", Integer, nullable=False),
    Column("code", String(10)),
    Column("info", Text),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

events = Table(
    "events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("declaration_id", String(40), ForeignKey("declarations.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("kind", String(30), nullable=False),
    Column("source", String(40), nullable=False),
    Column("status", String(20), nullable=False),
    Column("code", String(10)),
    Column("info", Text),
    Column("data", JSON),
    Index("ix_events_declaration", "declaration_id", "id"),
)

dispatches = Table(
    "dispatches",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("message_id", String(40), ForeignKey("messages.id"), nullable=False),
    Column("authority", String(20), nullable=False),
    # declaration: the signed CEB message itself; manifest / release: the gateway's own
    # port message for this message (manifest) or one consignment (release).
    Column("kind", String(12), nullable=False, server_default="declaration"),
    Column("declaration_id", String(40), ForeignKey("declarations.id")),
    Column("msg_type", String(20)),
    Column("payload", LargeBinary),  # signed bytes when not the message's own
    Column("state", String(12), nullable=False),  # pending | sending | sent | failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_until", DateTime(timezone=True)),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("sent_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Index(
        "uq_dispatches_message_authority_kind",
        "message_id",
        "authority",
        "kind",
        unique=True,
        sqlite_where=text("kind != 'release'"),
        postgresql_where=text("kind != 'release'"),
    ),
    # Release once: at most one release dispatch per consignment (declaration).
    Index(
        "uq_dispatches_one_release",
        "declaration_id",
        unique=True,
        sqlite_where=text("kind = 'release'"),
        postgresql_where=text("kind = 'release'"),
    ),
    Index("ix_dispatches_due", "state", "next_attempt_at"),
)

joint_inspections = Table(
    "joint_inspections",
    metadata,
    Column("id", String(40), primary_key=True),
    # Inspect once: one joint inspection per consignment, whoever asked first.
    Column(
        "declaration_id", String(40), ForeignKey("declarations.id"), nullable=False, unique=True
    ),
    Column("opened_at", DateTime(timezone=True), nullable=False),
    Column("requested_by", JSON, nullable=False),  # authorities that selected it
    Column("results", JSON, nullable=False),  # authority -> {code, info, at}
    Column("closed_at", DateTime(timezone=True)),
)

port_events = Table(
    "port_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("kind", String(12), nullable=False),  # arrival | gate_out
    Column("logistics_no", String(60), nullable=False),
    Column("bill_no", String(60)),
    Column("invt_no", String(60)),
    Column("port_code", String(8)),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("raw_xml", LargeBinary, nullable=False),
    Index("ix_port_events_logistics_no", "logistics_no", "kind"),
)

quota_ledger = Table(
    "quota_ledger",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("buyer_key", String(64), nullable=False),
    Column("year", Integer, nullable=False),
    Column("amount", String(24), nullable=False),  # a Decimal, exact
    Column("kind", String(10), nullable=False),  # release | restore
    Column("declaration_id", String(40), ForeignKey("declarations.id"), nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    # Counted once, restored once, whatever repeats.
    UniqueConstraint("declaration_id", "kind"),
    Index("ix_quota_ledger_buyer_year", "buyer_key", "year"),
)

poll_cursors = Table(
    "poll_cursors",
    metadata,
    Column("source", String(120), primary_key=True),  # "<authority>:<receiver dxp id>"
    Column("cursor", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

receipts = Table(
    "receipts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("fingerprint", String(64), nullable=False, unique=True),
    Column("authority", String(20), nullable=False),
    Column("message_type", String(10), nullable=False),
    Column("declaration_id", String(40), ForeignKey("declarations.id")),
    Column("return_status", String(10), nullable=False),
    Column("return_time", String(20)),
    Column("applied", Integer, nullable=False),
    Column("raw_xml", LargeBinary, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
)


users = Table(
    "users",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), ForeignKey("organisations.id"), nullable=False),
    Column("username", String(120), nullable=False, unique=True),
    Column("email", String(200)),
    Column("role", String(20), nullable=False),
    Column("password_hash", String(200), nullable=False),  # scrypt$n$r$p$salt$hash
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("disabled_at", DateTime(timezone=True)),
    Index("ix_users_org", "org_id"),
)

# Who may see a declaration: one row per party code in it (ebpCode, ebcCode, agentCode,
# logisticsCode, payCode, copCode), written in the declare transaction. The primary key
# (code first) is the index the visibility rule looks codes up in.
declaration_parties = Table(
    "declaration_parties",
    metadata,
    Column("code", String(64), primary_key=True),
    Column("declaration_id", String(40), ForeignKey("declarations.id"), primary_key=True),
)

# The organisations' registered codes, one row each (organisations.codes, normalised), so the
# visibility rule can be written with an organisation id alone (webhooks, feeds, exports).
organisation_codes = Table(
    "organisation_codes",
    metadata,
    Column("org_id", String(40), ForeignKey("organisations.id"), primary_key=True),
    Column("code", String(64), primary_key=True),
)
