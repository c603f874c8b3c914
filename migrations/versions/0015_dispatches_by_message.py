"""dispatches: an index on message_id

Every receipt asks which dispatches of its message were sent (refresh_status). SQLite
cannot use the partial unique index (message_id, authority, kind) WHERE kind != 'release'
for ``kind = 'declaration'``, so that query read the whole outbox, signed payloads included,
and grew slower with every message ever sent.

Revision ID: 0015_dispatches_by_message
Revises: 0014_inbound_settled
Create Date: 2026-12-01 14:10:00
"""

from alembic import op

revision = "0015_dispatches_by_message"
down_revision = "0014_inbound_settled"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("dispatches", schema=None) as batch_op:
        batch_op.create_index("ix_dispatches_message", ["message_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dispatches", schema=None) as batch_op:
        batch_op.drop_index("ix_dispatches_message")
