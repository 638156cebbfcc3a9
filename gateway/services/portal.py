"""The embedded corporate portal's quotes: the billing contact accepts or rejects them."""

from __future__ import annotations

from sqlalchemy import select

from adapters.errors import AdapterError
from adapters.models import PortalQuote
from gateway.access import load_account
from gateway.errors import GatewayError, not_found
from gateway.orders import lifecycle
from gateway.orders.models import Order
from gateway.services.views import money
from tenants.models import Tenant


def quote_view(q: PortalQuote) -> dict:
    return {"id": q.id, "order_id": q.order_id, "account_id": q.account_id, "status": q.status,
            "items": q.items, "total_due": money(q.total_due, q.currency), "currency": q.currency,
            "expires_at": q.expires_at, "created_at": q.created_at}


def list_quotes(db, account_id: str) -> list[dict]:
    account = load_account(db, account_id)
    rows = db.scalars(select(PortalQuote).where(PortalQuote.account_id == account.id)
                      .order_by(PortalQuote.created_at.desc()))
    return [quote_view(q) for q in rows]


def decide_quote(deps, quote_id: str, accept: bool, note: str | None = None,
                 po_number: str | None = None) -> dict:
    db, p = deps.db, deps.principal
    q = db.get(PortalQuote, quote_id)
    if q is None or (p.kind != "service" and q.account_id not in p.memberships):
        raise not_found("portal quote")
    account = load_account(db, q.account_id, "bill", p)
    if accept and not po_number and db.get(Tenant, account.tenant_id).require_po_number:
        raise GatewayError(422, "po_number_required",
                           "Your organisation requires a purchase-order number to accept a quote.",
                           errors={"po_number": ["required by your organisation's policy"]})
    # The order first, then its quote: the same lock order as a withdrawal.
    order = db.get(Order, q.order_id, with_for_update=True, populate_existing=True)
    q = db.get(PortalQuote, quote_id, with_for_update=True, populate_existing=True)
    try:
        lifecycle.decide_quote(db, q, order, accept, actor=p.label, now=deps.clock.now(),
                               note=note, po_number=po_number,
                               adapter=deps.adapter_for(order.segment))
    except AdapterError as exc:
        raise adapter_refusal(db, exc) from exc
    except lifecycle.SubscriptionChanged as exc:
        raise subscription_changed(db, exc) from exc
    db.commit()
    deps.relay()
    return quote_view(q)


def adapter_refusal(db, exc: AdapterError) -> GatewayError:
    # The outside system is down or refused: nothing changes; the caller may try again.
    db.rollback()
    return GatewayError(503 if exc.retryable else 502, "adapter_unavailable",
                        f"The {exc.system or 'billing system'} did not apply the change: {exc}. "
                        "Nothing was changed; try again later.")


def subscription_changed(db, exc: lifecycle.SubscriptionChanged) -> GatewayError:
    db.rollback()
    return GatewayError(409, "subscription_changed",
                        f"Subscription {exc} changed since this order was priced: nothing was "
                        "applied; place a new order.")
