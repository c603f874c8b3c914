"""inbound messages: settled, once nothing in them waits any more

A message with an entry that matched no declaration yet (a tax bill that came before its
list's number) is applied again when it comes again; only a settled one is answered as a
duplicate at once. Messages kept before this are unsettled: applying them again is safe.

Revision ID: 0014_inbound_settled
Revises: 0013_inbound_messages
Create Date: 2026-12-01 12:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0014_inbound_settled"
down_revision = "0013_inbound_messages"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("settled", sa.Boolean(), nullable=False, server_default=sa.false())
        )


def downgrade() -> None:
    with op.batch_alter_table("inbound_messages", schema=None) as batch_op:
        batch_op.drop_column("settled")
