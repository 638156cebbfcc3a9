"""Prices requested changes for an account: the quote, the cart's totals, an order's lines.

Everything is recomputed from the current records; a quote is never stored as a promise.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select

from gateway.errors import GatewayError, not_found
from gateway.services import vat_numbers, views
from gateway.services.facts import AccountFacts
from gateway.services.facts import load as load_facts
from gateway.services.policy import tenant_policy
from routing.assessment import ChangeRefused, Terms, assess_change, assess_new_subscription
from routing.money import quantize
from routing.policy import Route, TenantRule, most_restrictive, next_action, route
from routing.pricing import ItemPrice, OrderTotals, price_item, price_order
from routing.requirements import Requirement, outstanding, requirements
from routing.vat import RATES_AS_OF, TaxTreatment, tax_treatment
from tenants.catalog import Catalog
from tenants.models import Account, Subscription

REFUSAL_STATUS = {"subscription_expired": 409, "subscription_canceled": 409}
# The request field a refusal is about, for the 422's `errors` (api.md, Conventions).
REFUSAL_FIELD = {"unknown_plan": "plan", "invalid_billing_period": "billing_period",
                 "invalid_licenses": "licenses", "licenses_in_use": "licenses"}


@dataclass
class PricedItem:
    spec: dict
    subscription: Subscription | None
    product: str
    current: Terms | None
    proposed: Terms
    kinds: tuple[str, ...]
    price: ItemPrice
    route: Route


@dataclass
class PricedOrder:
    account: Account
    items: list[PricedItem]
    totals: OrderTotals
    tax: TaxTreatment
    requirements: tuple[Requirement, ...]
    route: Route
    rate_increase: bool
    segment: str


def refusal(exc: ChangeRefused) -> GatewayError:
    extra = dict(exc.details)
    if exc.code in REFUSAL_FIELD:
        extra["errors"] = {REFUSAL_FIELD[exc.code]: [exc.message]}
    return GatewayError(REFUSAL_STATUS.get(exc.code, 422), exc.code, exc.message, **extra)


def price_unavailable(plan, period, currency) -> GatewayError:
    message = f"The catalog has no {currency} price for plan {plan!r} billed {period}."
    return GatewayError(422, "price_unavailable", message, errors={"plan": [message]})


def catalog(deps, product: str | None) -> Catalog:
    return deps.cache.get("catalog", product, lambda: Catalog.load(deps.db, product))


def price_spec(deps, account: Account, spec: dict, today, subs: dict, known) -> PricedItem:
    if spec.get("subscription_id"):
        sub = subs.get(spec["subscription_id"])
        if sub is None or sub.account_id != account.id:
            raise not_found("subscription")
        catalog_ = catalog(deps, sub.product)
        current = Terms(sub.plan, sub.licenses, sub.billing_period)
        try:
            proposed, kinds = assess_change(
                current=current, status=sub.status, plan=spec.get("plan"),
                licenses=spec.get("licenses"), billing_period=spec.get("billing_period"),
                plan_ranks=catalog_.ranks, assigned_licenses=known.assigned.get(sub.id, 0))
        except ChangeRefused as exc:
            raise refusal(exc) from exc
        current_price = catalog_.price(sub.plan, account.currency, sub.billing_period)
        if current_price is None:
            raise price_unavailable(sub.plan, sub.billing_period, account.currency)
        product = sub.product
    else:
        sub, current, current_price = None, None, None
        product = spec.get("product")
        catalog_ = catalog(deps, product)
        if catalog_.product is None:
            raise GatewayError(422, "unknown_product", f"No product {product!r}.",
                               errors={"product": ["unknown product"]})
        try:
            proposed, kinds = assess_new_subscription(
                plan=spec.get("plan"), licenses=spec.get("licenses"),
                billing_period=spec.get("billing_period"), plan_ranks=catalog_.ranks)
        except ChangeRefused as exc:
            raise refusal(exc) from exc
    proposed_price = catalog_.price(proposed.plan, account.currency, proposed.billing_period)
    if proposed_price is None:
        raise price_unavailable(proposed.plan, proposed.billing_period, account.currency)
    item_price = price_item(
        today=today, currency=account.currency, proposed=proposed,
        proposed_unit_price=proposed_price, current=current, current_unit_price=current_price,
        period_start=sub.current_period_start if sub else None,
        period_end=sub.current_period_end if sub else None,
        paid=sub is not None and sub.status != "trial")
    return PricedItem(spec, sub, product, current, proposed, kinds, item_price,
                      Route("", ""))


def price(deps, account: Account, specs: list[dict], *, subs: dict | None = None,
          facts: AccountFacts | None = None) -> PricedOrder:
    """`subs` (by id) and `facts`: as the caller read them already (orders hold row locks),
    else read here."""
    db, today = deps.db, deps.clock.today()
    ids = [s["subscription_id"] for s in specs if s.get("subscription_id")]
    if subs is None:
        subs = {s.id: s for s in db.scalars(select(Subscription).where(Subscription.id.in_(ids)))} \
            if ids else {}
    known = facts if facts is not None else load_facts(db, deps.cache, account.id, ids)
    tenant = tenant_policy(deps, account.tenant_id)
    items = [price_spec(deps, account, s, today, subs, known) for s in specs]
    segment = views.segment_of(account, tenant, known.active_licenses).segment
    rules = [TenantRule(r["change_kind"], r["reason"], r.get("segment"))
             for r in tenant.advisor_rules or ()]
    for item in items:
        item.route = route(segment, item.kinds, rules)
    has_vat = vat_numbers.relied_on(account)  # never a number the registry found invalid
    tax = tax_treatment(deps.settings["SELLER_COUNTRY"], account.country, has_vat)
    totals = price_order([i.price for i in items], currency=account.currency,
                         credit_balance=available_balance(account, known), vat_rate=tax.rate)
    rate_increase = any(i.price.rate_increase for i in items)
    reqs = requirements(
        rate_increase=rate_increase, charges=totals.total_due > 0,
        payment_terms=account.payment_terms,
        has_payment_method=has_payment_method(account, today),
        country=account.country, vat_number_required_by_policy=tenant.require_vat_number,
        has_valid_vat_number=has_vat)
    return PricedOrder(account, items, totals, tax, reqs,
                       most_restrictive(i.route for i in items), rate_increase, segment)


def available_balance(account: Account, known: AccountFacts) -> Decimal:
    """The credit balance less what open orders already applied: it only moves when they are
    carried out, and must not be spent twice meanwhile."""
    if account.credit_balance <= 0:  # nothing to spend: what open orders hold is 0 too
        return account.credit_balance
    return account.credit_balance - known.reserved


def has_payment_method(account: Account, today) -> bool:
    pm = views.payment_method(account, today)
    return pm is not None and not pm["expired"]


# -- wire shapes -----------------------------------------------------------------------------
def rate(value: Decimal) -> str:
    return f"{value:.2f}" if value == value.quantize(Decimal("0.01")) else str(value.normalize())


def money(amount: Decimal, currency: str) -> str:
    return str(quantize(amount, currency))


def tax_view(order: PricedOrder) -> dict:
    cur = order.account.currency
    return {"treatment": order.tax.treatment, "country": order.tax.country,
            "rate": rate(order.tax.rate), "amount": money(order.totals.tax, cur),
            "rates_as_of": RATES_AS_OF.isoformat(),
            "vat_status": vat_numbers.status_of(order.account)}


def totals_view(order: PricedOrder) -> dict:
    cur, t = order.account.currency, order.totals
    return {"currency": cur, "net": money(t.net, cur),
            "balance_applied": money(t.balance_applied, cur),
            "credit_added": money(t.credit_added, cur), "tax": tax_view(order),
            "total_due": money(t.total_due, cur)}


def lines(item: PricedItem, currency: str) -> list[dict]:
    p, cur = item.price, currency
    out = []
    if item.current is not None:
        credit = money(-p.credit, cur) if p.credit else money(p.credit, cur)
        out.append({"type": "credit_unused", "amount": credit,
                    "description": f"Unused time on {item.current.plan} x{item.current.licenses} "
                                   f"({item.current.billing_period}) until "
                                   f"{item.subscription.current_period_end.isoformat()}"})
    out.append({"type": "charge", "amount": money(p.charge, cur),
                "description": f"{item.proposed.plan} x{item.proposed.licenses} "
                               f"({item.proposed.billing_period}) from {p.period_start.isoformat()} "
                               f"to {p.period_end.isoformat()}"})
    return out


def quote_view(order: PricedOrder, *, cart_has_items: bool) -> dict:
    item = order.items[0]
    cur = order.account.currency
    sub = item.subscription
    current = None
    if sub is not None:
        current = {"plan": sub.plan, "licenses": sub.licenses,
                   "billing_period": sub.billing_period, "period_start": sub.current_period_start,
                   "period_end": sub.current_period_end,
                   "recurring_amount": money(item.price.current_recurring, cur)}
    body = {
        "subscription_id": sub.id if sub else None,
        "product": item.product,
        "currency": cur,
        "changes": list(item.kinds),
        "current": current,
        "proposed": {"plan": item.proposed.plan, "licenses": item.proposed.licenses,
                     "billing_period": item.proposed.billing_period,
                     "period_start": item.price.period_start,
                     "period_end": item.price.period_end,
                     "recurring_amount": money(item.price.proposed_recurring, cur)},
        "rate_increase": order.rate_increase,
        "lines": lines(item, cur),
    }
    body.update(totals_view(order))
    body["requirements"] = [{"type": r.type, "status": r.status} for r in order.requirements]
    body["route"] = {"destination": order.route.destination, "reason": order.route.reason}
    body["next_action"] = next_action(
        cart_has_other_items=cart_has_items,
        outstanding_requirements=bool(outstanding(order.requirements)),
        destination=order.route.destination)
    return body
