"""Quote a change to one subscription."""

from __future__ import annotations

from gateway.access import load_account
from gateway.errors import not_found
from gateway.services import facts, pricing


def quote(deps, subscription_id: str, request: dict) -> dict:
    db, who = deps.db, deps.principal
    # The subscription, its account and everything pricing reads of them: one statement.
    row = db.connection().execute(facts.QUOTE, {"subscription_id": subscription_id}).first()
    sub = facts.subscription_of(row) if row else None
    if sub is None or (who.kind != "service" and sub.account_id not in who.memberships):
        raise not_found("subscription")
    deps.cache.observe(row.cache_version)
    account = load_account(db, sub.account_id, "bill", who, loaded=facts.account_of(row))
    known = facts.from_rows([row], [sub.id])
    priced = pricing.price(deps, account, [dict(request, subscription_id=sub.id)],
                           subs={sub.id: sub}, facts=known)
    return pricing.quote_view(priced, cart_has_items=known.cart_has_items)


def quote_new(deps, account_id: str, request: dict) -> dict:
    """Price "subscribe now": a new subscription of a product (an expired trial's product)."""
    db = deps.db
    account = load_account(db, account_id, "bill", deps.principal)
    spec = {k: request.get(k) for k in ("product", "plan", "licenses", "billing_period")}
    known = facts.load(db, deps.cache, account.id)
    priced = pricing.price(deps, account, [spec], subs={}, facts=known)
    return pricing.quote_view(priced, cart_has_items=known.cart_has_items)
