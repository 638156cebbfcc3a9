"""The cart: pending change items per account, one per subscription, placed as one order."""

from __future__ import annotations

from sqlalchemy import select

from gateway.access import load_account
from gateway.errors import GatewayError, not_found
from gateway.orders.models import CartItem
from gateway.services import pricing
from routing.policy import next_action
from routing.requirements import outstanding

FIELDS = ("subscription_id", "product", "plan", "licenses", "billing_period")


def spec(item: CartItem) -> dict:
    return {k: getattr(item, k) for k in FIELDS if getattr(item, k) is not None}


def items(db, account_id: str) -> list[CartItem]:
    return list(db.scalars(select(CartItem).where(CartItem.account_id == account_id)
                           .order_by(CartItem.created_at, CartItem.id)))


def item_view(item: CartItem, priced: pricing.PricedItem | None, currency: str) -> dict:
    body = {"id": item.id, "account_id": item.account_id, **{k: getattr(item, k) for k in FIELDS}}
    if priced is not None:
        body["changes"] = list(priced.kinds)
        body["lines"] = pricing.lines(priced, currency)
        body["route"] = {"destination": priced.route.destination, "reason": priced.route.reason}
    return body


def read(deps, account_id: str) -> dict:
    db, who = deps.db, deps.principal
    # A `read` service reads everything (api.md, Identity); of the contacts, billing contacts.
    account = load_account(db, account_id, "read" if who.kind == "service" else "bill", who)
    rows = items(db, account.id)
    if not rows:
        return {"items": [], "quote": None}
    priced = pricing.price(deps, account, [spec(i) for i in rows])
    quote = pricing.totals_view(priced)
    quote.update(
        rate_increase=priced.rate_increase,
        requirements=[{"type": r.type, "status": r.status} for r in priced.requirements],
        route={"destination": priced.route.destination, "reason": priced.route.reason},
        next_action=next_action(cart_has_other_items=False,
                                outstanding_requirements=bool(outstanding(priced.requirements)),
                                destination=priced.route.destination),
    )
    return {"items": [item_view(i, p, account.currency) for i, p in zip(rows, priced.items, strict=True)],
            "quote": quote}


def add(deps, account_id: str, data: dict) -> dict:
    db = deps.db
    account = load_account(db, account_id, "bill", deps.principal)
    if data.get("subscription_id") and db.scalar(select(CartItem.id).where(
            CartItem.account_id == account.id, CartItem.subscription_id == data["subscription_id"])):
        raise GatewayError(409, "already_in_cart", "That subscription already has an item in the cart; "
                           "edit it instead.")
    priced = _priced(deps, account, data)  # refuses what could never be ordered
    item = CartItem(tenant_id=account.tenant_id, account_id=account.id,
                    **{k: data.get(k) for k in FIELDS})
    db.add(item)
    db.commit()
    return item_view(item, priced, account.currency)


def edit(deps, account_id: str, item_id: str, data: dict) -> dict:
    db = deps.db
    account = load_account(db, account_id, "bill", deps.principal)
    item = db.get(CartItem, item_id)
    if item is None or item.account_id != account.id:
        raise not_found("cart item")
    for key in ("plan", "licenses", "billing_period"):
        if key in data:
            setattr(item, key, data[key])
    priced = _priced(deps, account, spec(item))
    db.commit()
    return item_view(item, priced, account.currency)


def remove(deps, account_id: str, item_id: str) -> None:
    db = deps.db
    account = load_account(db, account_id, "bill", deps.principal)
    item = db.get(CartItem, item_id)
    if item is None or item.account_id != account.id:
        raise not_found("cart item")
    db.delete(item)
    db.commit()


def _priced(deps, account, item_spec: dict) -> pricing.PricedItem:
    # Priced as an order of one, so that the item carries its route.
    return pricing.price(deps, account, [item_spec]).items[0]

