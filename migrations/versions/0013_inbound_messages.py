"""inbound messages: each signed receipt or port message kept once, not once per entry

Authorities pack up to 100 entries into one message. Receipts and port events now name the
message they came in (message_digest) instead of each holding a copy of it; older rows keep
their own copy in raw_xml, which becomes nullable.

Revision ID: 0013_inbound_messages
Revises: 0012_access_users_parties
Create Date: 2026-12-01 11:50:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0013_inbound_messages"
down_revision = "0012_access_users_parties"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "inbound_messages",
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("authority", sa.String(length=20), nullable=False),
        sa.Column("message_type", sa.String(length=20), nullable=False),
        sa.Column("raw_xml", sa.LargeBinary(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("digest", name=op.f("pk_inbound_messages")),
    )
    for table in ("receipts", "port_events"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("message_digest", sa.String(length=64), nullable=True))
            batch_op.alter_column("raw_xml", existing_type=sa.LargeBinary(), nullable=True)


def downgrade() -> None:
    for table in ("receipts", "port_events"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column("raw_xml", existing_type=sa.LargeBinary(), nullable=False)
            batch_op.drop_column("message_digest")
    op.drop_table("inbound_messages")
