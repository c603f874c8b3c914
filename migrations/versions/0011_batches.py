"""batches: bulk uploads, their chunks and per-item results

Revision ID: 0011_batches
Revises: 0010_declaration_numbers
Create Date: 2026-12-01 08:10:00
"""

from alembic import op
import sqlalchemy as sa


revision = "0011_batches"
down_revision = "0010_declaration_numbers"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "batches",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("org_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("template", sa.String(length=10), nullable=True),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("total", sa.Integer(), nullable=False),
        sa.Column("processed", sa.Integer(), server_default="0", nullable=False),
        sa.Column("accepted", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rejected", sa.Integer(), server_default="0", nullable=False),
        sa.Column("upload", sa.LargeBinary(), nullable=False),
        sa.Column("body_hash", sa.String(length=64), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["org_id"], ["organisations.id"], name=op.f("fk_batches_org_id_organisations")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_batches")),
        sa.UniqueConstraint(
            "org_id", "idempotency_key", name=op.f("uq_batches_org_id_idempotency_key")
        ),
    )
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.create_index("ix_batches_org_created", ["org_id", "created_at"], unique=False)
    op.create_table(
        "batch_chunks",
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.Column("chunk", sa.Integer(), nullable=False),
        sa.Column("first_position", sa.Integer(), nullable=False),
        sa.Column("last_position", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), server_default="0", nullable=False),
        sa.Column("lease_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requeue_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_batch_chunks_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("batch_id", "chunk", name=op.f("pk_batch_chunks")),
    )
    with op.batch_alter_table("batch_chunks", schema=None) as batch_op:
        batch_op.create_index(
            "ix_batch_chunks_unfinished", ["status", "requeue_at"], unique=False
        )
    op.create_table(
        "batch_items",
        sa.Column("batch_id", sa.String(length=40), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=300), nullable=False),
        sa.Column("rows", sa.JSON(), nullable=True),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=True),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("message_id", sa.String(length=40), nullable=True),
        sa.Column("declaration_ids", sa.JSON(), nullable=True),
        sa.Column("errors", sa.JSON(), nullable=True),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["batch_id"], ["batches.id"], name=op.f("fk_batch_items_batch_id_batches")
        ),
        sa.PrimaryKeyConstraint("batch_id", "position", name=op.f("pk_batch_items")),
    )


def downgrade() -> None:
    op.drop_table("batch_items")
    with op.batch_alter_table("batch_chunks", schema=None) as batch_op:
        batch_op.drop_index("ix_batch_chunks_unfinished")
    op.drop_table("batch_chunks")
    with op.batch_alter_table("batches", schema=None) as batch_op:
        batch_op.drop_index("ix_batches_org_created")
    op.drop_table("batches")
