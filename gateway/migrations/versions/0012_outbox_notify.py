"""outbox rows to send notify the workers (PostgreSQL): the relay runs in the worker, woken by
the commit that wrote them, not in the process that served the request

Revision ID: 0012
Revises: 0011
"""
from alembic import op


revision = '0012'
down_revision = '0011'
branch_labels = None
depends_on = None

# adapters.outbox.CHANNEL: kept literal here, as a migration must not change with the code.
CHANNEL = 'gateway_outbox'


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return  # SQLite: no LISTEN/NOTIFY; the process that commits relays (adapters.outbox)
    # Row-level, with a condition: a message written as already sent (a job that sends it
    # itself) wakes no one. Notifications of one transaction are delivered at its commit,
    # identical ones once.
    op.execute(f"""
        CREATE FUNCTION gateway_outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', '');
            RETURN NULL;
        END $$""")
    op.execute("""
        CREATE TRIGGER outbox_notify AFTER INSERT OR UPDATE OF dispatched_at ON outbox
        FOR EACH ROW WHEN (NEW.dispatched_at IS NULL) EXECUTE FUNCTION gateway_outbox_notify()""")


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.execute("DROP FUNCTION gateway_outbox_notify()")
