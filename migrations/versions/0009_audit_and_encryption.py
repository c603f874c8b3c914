"""audit trail (hash chain) and personal data sealed at rest

Revision ID: 0009_audit_and_encryption
Revises: 0008_dashboard_number_indexes

The stored XML of messages and receipts stays in the same LargeBinary columns: new rows are
sealed (AES-256-GCM, a 0x01 prefix), rows written before stay plaintext until
`python -m gateway data-keys reencrypt` seals them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_audit_and_encryption"
down_revision = "0008_dashboard_number_indexes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("at", sa.String(length=32), nullable=False),
        sa.Column("actor", sa.JSON(), nullable=False),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("objects", sa.JSON(), nullable=False),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_action", "audit_log", ["action"], unique=False)
    head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_head")),
    )
    op.bulk_insert(head, [{"id": 1, "seq": 0}])


def downgrade() -> None:
    op.drop_table("audit_head")
    op.drop_index("ix_audit_log_action", table_name="audit_log")
    op.drop_table("audit_log")
