"""organisations and access: users, API key labels, declaration parties, organisation codes

Revision ID: 0012_access_users_parties
Revises: 0011_batches
Create Date: 2026-12-01 08:20:00
"""
from alembic import op
import sqlalchemy as sa


revision = "0012_access_users_parties"
down_revision = "0011_batches"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('users',
    sa.Column('id', sa.String(length=40), nullable=False),
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('username', sa.String(length=120), nullable=False),
    sa.Column('email', sa.String(length=200), nullable=True),
    sa.Column('role', sa.String(length=20), nullable=False),
    sa.Column('password_hash', sa.String(length=200), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('disabled_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_users_org_id_organisations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('username', name=op.f('uq_users_username'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index('ix_users_org', ['org_id'], unique=False)

    op.create_table('declaration_parties',
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.Column('declaration_id', sa.String(length=40), nullable=False),
    sa.ForeignKeyConstraint(['declaration_id'], ['declarations.id'], name=op.f('fk_declaration_parties_declaration_id_declarations')),
    sa.PrimaryKeyConstraint('code', 'declaration_id', name=op.f('pk_declaration_parties'))
    )

    op.create_table('organisation_codes',
    sa.Column('org_id', sa.String(length=40), nullable=False),
    sa.Column('code', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['org_id'], ['organisations.id'], name=op.f('fk_organisation_codes_org_id_organisations')),
    sa.PrimaryKeyConstraint('org_id', 'code', name=op.f('pk_organisation_codes'))
    )

    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('name', sa.String(length=80), nullable=True))
        batch_op.add_column(sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True))
        batch_op.create_index('ix_api_keys_org', ['org_id'], unique=False)

    # Existing declarations: their party codes were kept as JSON; index them once.
    conn = op.get_bind()
    declarations = sa.table('declarations', sa.column('id', sa.String), sa.column('codes', sa.JSON))
    parties = sa.table('declaration_parties', sa.column('code', sa.String), sa.column('declaration_id', sa.String))
    rows = [
        {'code': code, 'declaration_id': r.id}
        for r in conn.execute(sa.select(declarations.c.id, declarations.c.codes))
        for code in sorted(set(r.codes or []))
        if code
    ]
    for i in range(0, len(rows), 1000):
        conn.execute(sa.insert(parties), rows[i:i + 1000])
    orgs = sa.table('organisations', sa.column('id', sa.String), sa.column('codes', sa.JSON))
    org_codes = sa.table('organisation_codes', sa.column('org_id', sa.String), sa.column('code', sa.String))
    rows = [
        {'org_id': r.id, 'code': code}
        for r in conn.execute(sa.select(orgs.c.id, orgs.c.codes))
        for code in sorted(set(r.codes or []))
        if code
    ]
    if rows:
        conn.execute(sa.insert(org_codes), rows)


def downgrade() -> None:
    with op.batch_alter_table('api_keys', schema=None) as batch_op:
        batch_op.drop_index('ix_api_keys_org')
        batch_op.drop_column('last_used_at')
        batch_op.drop_column('name')

    op.drop_table('organisation_codes')
    op.drop_table('declaration_parties')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('ix_users_org')

    op.drop_table('users')
