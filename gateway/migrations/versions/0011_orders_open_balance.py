"""orders holding part of an account's balance, indexed apart: read on every quote and order

Revision ID: 0011
Revises: 0010
"""
from alembic import op
import sqlalchemy as sa


revision = '0011'
down_revision = '0010'
branch_labels = None
depends_on = None

OPEN_BALANCE = ("status IN ('processing', 'awaiting_advisor', 'awaiting_acceptance') "
                "AND balance_applied <> 0")


def upgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_open_balance', ['account_id'], unique=False,
                              postgresql_where=sa.text(OPEN_BALANCE),
                              sqlite_where=sa.text(OPEN_BALANCE))


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.drop_index('ix_orders_open_balance')
