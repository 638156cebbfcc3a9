"""Where a placed order goes next: its collaborators picked from the app, then the lifecycle.

The job queue, the corporate portal or an advisor: the route decides, and `lifecycle.place`
records it. This module only supplies what the lifecycle must not reach for itself.
"""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from gateway.orders import lifecycle
from tenants.db import utcnow


def on_placed(db, order, *, actor: str) -> None:
    lifecycle.place(db, order, actor=actor, now=utcnow(),
                    portal_remote=current_app.extensions["gateway.corporate_portal"].remote)


def adapter_for(order):
    """The adapter that applies the order's change: the corporate portal (as a purchase order)
    for enterprise accounts, the billing center for self-serve ones."""
    name = "gateway.corporate_portal" if order.segment == "enterprise" else "gateway.billing_center"
    return current_app.extensions[name]


def claim_lease() -> timedelta:
    return timedelta(seconds=current_app.config["CASE_CLAIM_LEASE_SECONDS"])
