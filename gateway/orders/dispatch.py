"""Where a placed order goes next: its collaborators taken from the caller's Deps, then the
lifecycle.

The job queue, the corporate portal or an advisor: the route decides, and `lifecycle.place`
records it. This module only hands over what the lifecycle must not reach for itself.
"""

from __future__ import annotations

from datetime import timedelta

from gateway.orders import lifecycle


def on_placed(deps, order) -> None:
    lifecycle.place(deps.db, order, actor=deps.principal.label, now=deps.clock.now(),
                    portal_remote=getattr(deps.corporate_portal, "remote", False))


def on_placed_at_once(deps, order, also=()) -> None:
    lifecycle.place_at_once(deps.db, order, actor=deps.principal.label, now=deps.clock.now(),
                            also=also)


def adapter_for(deps, order):
    """The adapter that applies the order's change: the corporate portal (as a purchase order)
    for enterprise accounts, the billing center for self-serve ones."""
    return deps.adapter_for(order.segment)


def claim_lease(deps) -> timedelta:
    return timedelta(seconds=deps.settings["CASE_CLAIM_LEASE_SECONDS"])
