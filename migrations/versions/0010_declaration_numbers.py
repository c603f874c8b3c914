"""declaration numbers: payTransactionId and barCode of each document, for tracing

Revision ID: 0010_declaration_numbers
Revises: 0009_audit_and_encryption
Create Date: 2026-12-01 09:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0010_declaration_numbers"
down_revision = "0009_audit_and_encryption"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "declaration_numbers",
        sa.Column("declaration_id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("number", sa.String(length=100), nullable=False),
        sa.ForeignKeyConstraint(
            ["declaration_id"],
            ["declarations.id"],
            name=op.f("fk_declaration_numbers_declaration_id_declarations"),
        ),
        sa.PrimaryKeyConstraint(
            "declaration_id", "kind", "number", name=op.f("pk_declaration_numbers")
        ),
    )
    op.create_index(
        "ix_declaration_numbers_number", "declaration_numbers", ["number", "kind"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_declaration_numbers_number", table_name="declaration_numbers")
    op.drop_table("declaration_numbers")
