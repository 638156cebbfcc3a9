"""accounts.active_licenses (summed once per change, not per quote); open orders by account

Revision ID: 0009
Revises: 0006
"""
from alembic import op
import sqlalchemy as sa


revision = '0009'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.add_column(sa.Column('active_licenses', sa.Integer(), server_default='0',
                                      nullable=False))
    op.execute("UPDATE accounts SET active_licenses = (SELECT COALESCE(SUM(s.licenses), 0) "
               "FROM subscriptions s WHERE s.account_id = accounts.id AND s.status = 'active')")
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_account_id_status', ['account_id', 'status'], unique=False)
        batch_op.drop_index('ix_orders_account_id')


def downgrade() -> None:
    with op.batch_alter_table('orders', schema=None) as batch_op:
        batch_op.create_index('ix_orders_account_id', ['account_id'], unique=False)
        batch_op.drop_index('ix_orders_account_id_status')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_column('active_licenses')
