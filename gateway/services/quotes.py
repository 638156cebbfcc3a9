"""Quote a change to one subscription."""

from __future__ import annotations

from sqlalchemy import exists, select

from gateway.access import load_account
from gateway.orders.models import CartItem
from gateway.services import pricing
from gateway.services.accounts import load_subscription


def quote(deps, subscription_id: str, request: dict) -> dict:
    db, who = deps.db, deps.principal
    sub, _ = load_subscription(db, subscription_id, who=who)
    account = load_account(db, sub.account_id, "bill", who)
    priced = pricing.price(deps, account, [dict(request, subscription_id=sub.id)])
    cart_has_items = db.scalar(select(exists().where(CartItem.account_id == account.id)))
    return pricing.quote_view(priced, cart_has_items=bool(cart_has_items))


def quote_new(deps, account_id: str, request: dict) -> dict:
    """Price "subscribe now": a new subscription of a product (an expired trial's product)."""
    db = deps.db
    account = load_account(db, account_id, "bill", deps.principal)
    spec = {k: request.get(k) for k in ("product", "plan", "licenses", "billing_period")}
    priced = pricing.price(deps, account, [spec])
    cart_has_items = db.scalar(select(exists().where(CartItem.account_id == account.id)))
    return pricing.quote_view(priced, cart_has_items=bool(cart_has_items))
