"""The corporate billing portal: enterprise changes become quotes there, and approved changes
are kept as purchase orders.

The embedded portal keeps its quotes in the gateway's database (answered through
`/api/v1/portal-quotes`) and its purchase orders in the embedded ledger.
"""

from __future__ import annotations

from adapters.billing_center import record_once


class EmbeddedCorporatePortal:
    system = "corporate_portal"
    remote = False  # quotes are answered in the gateway itself, nothing to send or poll

    def apply(self, change: dict, db) -> dict:
        # An accepted quote's purchase-order number is kept with the change.
        return record_once(db, change["order_id"], self.system, change.get("po_number"))
