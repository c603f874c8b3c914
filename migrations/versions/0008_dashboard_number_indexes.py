"""dashboard: index the numbers the list search, the action-needed view and trace look up

Revision ID: 0008_dashboard_number_indexes
Revises: 0007_outage_notices
Create Date: 2026-12-01 08:50:00
"""

from alembic import op

revision = "0008_dashboard_number_indexes"
down_revision = "0007_outage_notices"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.create_index("ix_declarations_order_no", ["order_no"], unique=False)
        batch_op.create_index("ix_declarations_pre_no", ["pre_no"], unique=False)
        batch_op.create_index("ix_declarations_cop_no", ["cop_no"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("declarations", schema=None) as batch_op:
        batch_op.drop_index("ix_declarations_cop_no")
        batch_op.drop_index("ix_declarations_pre_no")
        batch_op.drop_index("ix_declarations_order_no")
