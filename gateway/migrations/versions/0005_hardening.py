"""hardening: the exact text of an order's first answer (byte-identical replays); columns
that hold a principal's label (kind, subject 255, issuer URL 500) widened to 800

Revision ID: 0005
Revises: 0008
"""
from alembic import op
import sqlalchemy as sa


revision = '0005'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.add_column(sa.Column('response_text', sa.Text(), nullable=True))
    for table, column in (('orders', 'placed_by'), ('audit_records', 'actor'),
                          ('advisor_case_history', 'actor')):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.String(length=300),
                                  type_=sa.String(length=800), existing_nullable=False)


def downgrade() -> None:
    for table, column in (('orders', 'placed_by'), ('audit_records', 'actor'),
                          ('advisor_case_history', 'actor')):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(column, existing_type=sa.String(length=800),
                                  type_=sa.String(length=300), existing_nullable=False)
    with op.batch_alter_table('idempotency_keys', schema=None) as batch_op:
        batch_op.drop_column('response_text')
