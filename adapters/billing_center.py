"""The billing center: where self-serve changes are applied.

The embedded implementation keeps its own ledger in the gateway's database, one row per
order, so applying the same order twice is a no-op.
"""

from __future__ import annotations

from adapters.models import LedgerEntry
from tenants.db import session_clock


def record_once(db, order_id: str, system: str, po_number: str | None = None) -> dict:
    """The embedded systems' book: one row per order, so a retried apply changes nothing."""
    dialect = db.get_bind().dialect.name
    if dialect in ("postgresql", "sqlite"):  # one statement: INSERT … ON CONFLICT DO NOTHING
        if dialect == "postgresql":
            from sqlalchemy.dialects.postgresql import insert
        else:
            from sqlalchemy.dialects.sqlite import insert
        done = db.execute(insert(LedgerEntry).values(
            order_id=order_id, system=system, po_number=po_number,
            applied_at=session_clock(db).now())
            .on_conflict_do_nothing(index_elements=["order_id"]))
        return {"status": "applied" if done.rowcount else "already_applied"}
    if db.get(LedgerEntry, order_id) is None:
        db.add(LedgerEntry(order_id=order_id, system=system, po_number=po_number))
        db.flush()
        return {"status": "applied"}
    return {"status": "already_applied"}


class EmbeddedBillingCenter:
    system = "billing_center"

    def apply(self, change: dict, db) -> dict:
        return record_once(db, change["order_id"], self.system)
