"""The billing center: where self-serve changes are applied.

The embedded implementation keeps its own ledger in the gateway's database, one row per
order, so applying the same order twice is a no-op.
"""

from __future__ import annotations

from sqlalchemy import bindparam
from sqlalchemy.dialects import postgresql, sqlite

from adapters.models import LedgerEntry
from tenants.db import session_clock


def _record_statement(insert):
    return (insert(LedgerEntry).values(order_id=bindparam("order_id"), system=bindparam("system"),
                                       po_number=bindparam("po_number"),
                                       applied_at=bindparam("applied_at"))
            .on_conflict_do_nothing(index_elements=["order_id"]))


# One statement (INSERT … ON CONFLICT DO NOTHING), built once per dialect and run on the
# session's connection: the ORM's bulk-insert path cost more Python than the statement.
_RECORD = {"postgresql": _record_statement(postgresql.insert),
           "sqlite": _record_statement(sqlite.insert)}


def record_once(db, order_id: str, system: str, po_number: str | None = None) -> dict:
    """The embedded systems' book: one row per order, so a retried apply changes nothing."""
    statement = _RECORD.get(db.get_bind().dialect.name)
    if statement is not None:
        done = db.connection().execute(statement, {
            "order_id": order_id, "system": system, "po_number": po_number,
            "applied_at": session_clock(db).now()})
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
