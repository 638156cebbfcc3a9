"""The billing center: where self-serve changes are applied.

The embedded implementation keeps its own ledger in the gateway's database, one row per
order, so applying the same order twice is a no-op.
"""

from __future__ import annotations

from adapters.models import LedgerEntry


class EmbeddedBillingCenter:
    system = "embedded"

    def apply(self, change: dict, db) -> dict:
        if db.get(LedgerEntry, change["order_id"]) is None:
            db.add(LedgerEntry(order_id=change["order_id"], system=self.system))
            db.flush()
            return {"status": "applied"}
        return {"status": "already_applied"}
