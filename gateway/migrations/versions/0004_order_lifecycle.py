"""order lifecycle: case history, PO numbers, contact locales, terms before a change

Revision ID: 0004
Revises: 0003
"""
import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "advisor_case_history",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("case_id", sa.String(length=40), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(length=300), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["case_id"], ["advisor_cases.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("advisor_case_history", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_advisor_case_history_case_id"), ["case_id"], unique=False)
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(sa.Column("po_number", sa.String(length=64), nullable=True))
    with op.batch_alter_table("order_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan_before", sa.String(length=60), nullable=True))
        batch_op.add_column(sa.Column("billing_period_before", sa.String(length=10), nullable=True))
    with op.batch_alter_table("billing_center_ledger", schema=None) as batch_op:
        batch_op.add_column(sa.Column("po_number", sa.String(length=64), nullable=True))
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("require_po_number", sa.Boolean(), nullable=False,
                                      server_default=sa.false()))
        batch_op.add_column(sa.Column("locale", sa.String(length=10), nullable=True))
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(length=10), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("locale")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("locale")
        batch_op.drop_column("require_po_number")
    with op.batch_alter_table("billing_center_ledger", schema=None) as batch_op:
        batch_op.drop_column("po_number")
    with op.batch_alter_table("order_items", schema=None) as batch_op:
        batch_op.drop_column("billing_period_before")
        batch_op.drop_column("plan_before")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("po_number")
    with op.batch_alter_table("advisor_case_history", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_advisor_case_history_case_id"))
    op.drop_table("advisor_case_history")
