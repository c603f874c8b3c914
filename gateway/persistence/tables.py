"""The database schema (SQLAlchemy Core). Migrations in migrations/ create exactly this.

Declarations, their messages (raw and signed bytes), per-authority statuses, the append-only
event log, dispatches (the outbox: one row per message and authority, claimed with a lease)
and receipts (deduplicated by fingerprint).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    Boolean,
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
    false,
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
    # The dashboard's search, action-needed view and trace look these up.
    Index("ix_declarations_order_no", "order_no"),
    Index("ix_declarations_pre_no", "pre_no"),
    Index("ix_declarations_cop_no", "cop_no"),
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
    Column("request_id", String(64)),  # the request that caused it, for its log lines
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
    # Which dispatches of a message were sent (every receipt asks): SQLite cannot use the
    # partial index above for kind = 'declaration'.
    Index("ix_dispatches_message", "message_id"),
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
    Column("raw_xml", LargeBinary),  # rows before 0013; newer ones name their message
    Column("message_digest", String(64)),  # -> inbound_messages
    Index("ix_port_events_logistics_no", "logistics_no", "kind"),
)

# The signed messages authorities and the port sent, each kept once however many entries it
# carried (up to 100): the evidence behind receipts and port events (sealed at rest).
inbound_messages = Table(
    "inbound_messages",
    metadata,
    Column("digest", String(64), primary_key=True),  # SHA-256 of the message bytes
    Column("authority", String(20), nullable=False),
    Column("message_type", String(20), nullable=False),
    Column("raw_xml", LargeBinary, nullable=False),
    Column("received_at", DateTime(timezone=True), nullable=False),
    # True once nothing in it waits any more (an entry that matched no declaration yet,
    # such as a tax bill that came before its list's number, makes it worth applying again).
    Column("settled", Boolean, nullable=False, server_default=false()),
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
    Column("raw_xml", LargeBinary),  # rows before 0013; newer ones name their message
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("message_digest", String(64)),  # -> inbound_messages
)

# --- webhooks: an organisation's subscriptions, and the outbox built from the events log ---

webhooks = Table(
    "webhooks",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), ForeignKey("organisations.id"), nullable=False),
    Column("url", String(2000), nullable=False),
    Column("events", JSON, nullable=False),  # event types subscribed to
    Column("description", String(200)),
    Column("secret", String(100), nullable=False),  # HMAC key; shown once on registration
    Column("cursor", Integer, nullable=False),  # the last events.id fanned out
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("deleted_at", DateTime(timezone=True)),
    Index("ix_webhooks_org", "org_id"),
)

webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("webhook_id", String(40), ForeignKey("webhooks.id"), nullable=False),
    Column("event_id", Integer, ForeignKey("events.id")),  # None for a test ping
    Column("event_type", String(60), nullable=False),
    Column("payload", LargeBinary, nullable=False),  # the same JSON bytes on every attempt
    Column("state", String(12), nullable=False),  # pending|sending|delivered|failed|cancelled
    Column("attempts", Integer, nullable=False, default=0),
    Column("lease_until", DateTime(timezone=True)),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_status", Integer),
    Column("last_error", Text),
    Column("delivered_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # Nothing is sent twice for the same event and webhook.
    UniqueConstraint("webhook_id", "event_id"),
    Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
    Index("ix_webhook_deliveries_webhook", "webhook_id", "id"),
)

webhook_attempts = Table(
    "webhook_attempts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", String(40), ForeignKey("webhook_deliveries.id"), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("http_status", Integer),
    Column("error", Text),
    Column("duration_ms", Integer, nullable=False),
    UniqueConstraint("delivery_id", "attempt"),
)

# Planned outages of an authority announced by an operator: users see them, and deliveries to
# that authority wait for the window to end.
outage_notices = Table(
    "outage_notices",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("authority", String(20), nullable=False),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False),
    Column("note", Text, nullable=False),
    Column("created_by", String(120), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("cancelled_at", DateTime(timezone=True)),
    Index("ix_outage_notices_ends_at", "ends_at"),
)

# Metrics count these at scrape time (GROUP BY); covering indexes keep that an index scan
# instead of reading every row (receipts and dispatches carry their XML bytes).
Index("ix_declarations_type_status", declarations.c.type, declarations.c.status)
Index("ix_receipts_authority_code", receipts.c.authority, receipts.c.return_status)
Index(
    "ix_dispatches_authority_kind_state",
    dispatches.c.authority,
    dispatches.c.kind,
    dispatches.c.state,
    dispatches.c.attempts,
)

# The audit trail (gateway/domain/audit.py): append-only, hash-chained. Appends serialize on
# the one audit_head row (seq = entries so far), updated first in the appending transaction.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=False),
    Column("at", String(32), nullable=False),  # ISO 8601 UTC, microseconds: hashed as is
    Column("actor", JSON, nullable=False),  # {kind, id, key_id?, role?}
    Column("action", String(60), nullable=False),
    Column("objects", JSON, nullable=False),  # ids of what was acted on
    Column("details", JSON, nullable=False),  # never personal data
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Index("ix_audit_log_action", "action"),
)

audit_head = Table(
    "audit_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),  # always 1
    Column("seq", Integer, nullable=False),
)

# Numbers that live only inside a document (payTransactionId, barCode), kept beside it so a
# trace finds them although the stored messages are encrypted. No personal data.
declaration_numbers = Table(
    "declaration_numbers",
    metadata,
    Column("declaration_id", String(40), ForeignKey("declarations.id"), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("number", String(100), primary_key=True),
    Index("ix_declaration_numbers_number", "number", "kind"),
)

# Bulk submission: one row per upload (its bytes kept until done, so a crash loses nothing)
# and one per item (a file of a ZIP, or a document of a spreadsheet) with its own result.
batches = Table(
    "batches",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("org_id", String(40), ForeignKey("organisations.id"), nullable=False),
    Column("kind", String(10), nullable=False),  # zip | csv | xlsx
    Column("template", String(10)),  # CEB311 | CEB411 | CEB511 | CEB621 (spreadsheets)
    Column("filename", String(255)),
    Column("status", String(10), nullable=False),  # queued | running | done | failed
    Column("total", Integer, nullable=False),
    Column("processed", Integer, nullable=False, server_default="0"),
    Column("accepted", Integer, nullable=False, server_default="0"),
    Column("rejected", Integer, nullable=False, server_default="0"),
    Column("upload", LargeBinary, nullable=False),
    Column("body_hash", String(64), nullable=False),
    Column("idempotency_key", String(200)),  # a retried upload answers with the same batch
    Column("error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True)),
    Index("ix_batches_org_created", "org_id", "created_at"),
    UniqueConstraint("org_id", "idempotency_key"),
)

# A batch is declared in chunks of consecutive items, one rq job each, so several workers
# share a large upload; each chunk is claimed with a lease and swept by the relay.
batch_chunks = Table(
    "batch_chunks",
    metadata,
    Column("batch_id", String(40), ForeignKey("batches.id"), primary_key=True),
    Column("chunk", Integer, primary_key=True),
    Column("first_position", Integer, nullable=False),
    Column("last_position", Integer, nullable=False),
    Column("status", String(10), nullable=False),  # queued | running | done
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("lease_until", DateTime(timezone=True)),  # a worker is processing it until then
    Column("requeue_at", DateTime(timezone=True), nullable=False),  # the relay's next look
    Index("ix_batch_chunks_unfinished", "status", "requeue_at"),
)

batch_items = Table(
    "batch_items",
    metadata,
    Column("batch_id", String(40), ForeignKey("batches.id"), primary_key=True),
    Column("position", Integer, primary_key=True),
    Column("name", String(300), nullable=False),  # the file, or "rows 7-9"
    Column("rows", JSON),  # spreadsheet row numbers of this document
    Column("status", String(10), nullable=False),  # pending | accepted | rejected
    Column("http_status", Integer),
    Column("title", String(200)),
    Column("detail", Text),
    Column("message_id", String(40)),
    Column("declaration_ids", JSON),
    Column("errors", JSON),
    Column("processed_at", DateTime(timezone=True)),
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
