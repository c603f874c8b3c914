"""planned outage notices; the request id that caused a dispatch; indexes the metrics count

Revision ID: 0007_outage_notices
Revises: 0006_webhooks
"""
from alembic import op
import sqlalchemy as sa


revision = "0007_outage_notices"
down_revision = "0006_webhooks"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outage_notices",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("authority", sa.String(length=20), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_by", sa.String(length=120), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outage_notices")),
    )
    with op.batch_alter_table("outage_notices", schema=None) as batch_op:
        batch_op.create_index("ix_outage_notices_ends_at", ["ends_at"], unique=False)
    with op.batch_alter_table("dispatches", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_id", sa.String(length=64), nullable=True))
        batch_op.create_index(
            "ix_dispatches_authority_kind_state",
            ["authority", "kind", "state", "attempts"],
            unique=False,
        )
    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.create_index("ix_declarations_type_status", ["type", "status"], unique=False)
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.create_index(
            "ix_receipts_authority_code", ["authority", "return_status"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("receipts", schema=None) as batch_op:
        batch_op.drop_index("ix_receipts_authority_code")
    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.drop_index("ix_declarations_type_status")
    with op.batch_alter_table("dispatches", schema=None) as batch_op:
        batch_op.drop_index("ix_dispatches_authority_kind_state")
        batch_op.drop_column("request_id")
    with op.batch_alter_table("outage_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_outage_notices_ends_at")
    op.drop_table("outage_notices")
