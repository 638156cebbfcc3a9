"""Placing orders: idempotent, priced again at order time, written with their outbox in one
transaction, then carried out from the job queue."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from gateway.access import advisor_sees_account, load_account, principal
from gateway.errors import GatewayError, not_found
from gateway.orders import dispatch, lifecycle
from gateway.orders.models import OPEN_STATUSES, CartItem, IdempotencyRecord, Order, OrderItem
from gateway.services import cart, claims, events, pricing
from gateway.services.licenses import assigned_count
from gateway.services.views import money
from routing.requirements import outstanding
from routing.vat import RATES_AS_OF
from tenants.models import Subscription

MAX_KEY_LENGTH = 200  # the column's width
MAX_SCOPE_LENGTH = 400  # the column's width
STATUS_BY_ROUTE = lifecycle.PLACED


@dataclass(frozen=True)
class Placed:
    """A new order's answer, or the stored first answer of a replayed key (already JSON)."""

    body: dict
    status: int = 201
    replay: bool = False
    text: str | None = None  # the exact JSON text answered first, when it was stored


def place(deps, account_id: str, body: dict, key: str | None, render=None) -> Placed:
    """`render(answer) -> str` gives the exact JSON text the caller gets (stored for replays)."""
    db, who = deps.db, deps.principal
    account = load_account(db, account_id, "bill", who)
    if not key:
        raise GatewayError(400, "idempotency_key_required", "Send an Idempotency-Key header.")
    if len(key) > MAX_KEY_LENGTH:
        raise GatewayError(400, "idempotency_key_invalid",
                           f"An Idempotency-Key has at most {MAX_KEY_LENGTH} characters.")
    scope = claim_scope(who.label, account.id)
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    replay = _claim_key(deps, scope, key, digest)
    if replay is not None:
        return replay
    try:
        answer = _place(deps, account, body, key)
        text = render(answer) if render else None
        # Stored with the order, in its transaction: a replay answers exactly these bytes.
        db.execute(update(IdempotencyRecord)
                   .where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
                   .values(response_status=201, response_text=text,
                           response_body=json.loads(deps.dumps(answer))))
        db.commit()
    except BaseException as exc:
        # A refusal or a failure places nothing, so the key may be used again at once.
        try:
            db.rollback()
            claims.delete_unanswered(db, scope, key)
            if isinstance(exc, GatewayError):
                events.audit(db, tenant_id=account.tenant_id, account_id=account.id,
                             actor=who.label, action="order.refused",
                             data={"error": exc.error, "message": exc.message, "request": body})
            db.commit()
        except Exception:  # the database went away: release the claim when it is back
            claims.release_later(db.get_bind(), scope, key)
        raise
    deps.relay()
    return Placed(answer, text=text)


def claim_scope(label: str, account_id: str) -> str:
    """Who (kind, issuer, subject) and which account; hashed when it would not fit its column
    (a long issuer URL plus a long subject)."""
    scope = f"{label}|{account_id}"
    if len(scope) <= MAX_SCOPE_LENGTH:
        return scope
    return "sha256:" + hashlib.sha256(scope.encode("utf-8")).hexdigest()


def _claim_key(deps, scope: str, key: str, digest: str):
    db = deps.db
    db.add(IdempotencyRecord(scope=scope, key=key, request_hash=digest))
    try:
        db.commit()
        return None
    except IntegrityError:
        db.rollback()
    if _forget_stale_key(deps, scope, key):
        return _claim_key(deps, scope, key, digest)
    record = db.scalar(select(IdempotencyRecord).where(IdempotencyRecord.scope == scope,
                                                       IdempotencyRecord.key == key))
    if record is None:  # the first attempt was refused and released the key meanwhile
        return _claim_key(deps, scope, key, digest)
    if record.request_hash != digest:
        raise GatewayError(422, "idempotency_key_reused",
                           "This Idempotency-Key was used with another request body.")
    if record.response_status is None:
        raise GatewayError(409, "idempotency_key_in_use",
                           "A request with this Idempotency-Key is still being processed.")
    return Placed(record.response_body, record.response_status, replay=True,
                  text=record.response_text)


def _forget_stale_key(deps, scope: str, key: str) -> bool:
    """An expired key is forgotten; so is a claim whose request died before answering (the
    order and its answer commit together, so such a claim placed nothing)."""
    db, cfg = deps.db, deps.settings
    now = deps.clock.now()
    ttl = timedelta(hours=cfg["IDEMPOTENCY_TTL_HOURS"])
    lease = timedelta(seconds=cfg["IDEMPOTENCY_LEASE_SECONDS"])
    gone = db.execute(delete(IdempotencyRecord).where(
        IdempotencyRecord.scope == scope, IdempotencyRecord.key == key,
        (IdempotencyRecord.created_at < now - ttl)
        | (IdempotencyRecord.response_status.is_(None) & (IdempotencyRecord.created_at < now - lease))))
    db.commit()
    return gone.rowcount > 0


def _place(deps, account, body: dict, key: str) -> dict:
    db = deps.db
    cart_items = cart.items(db, account.id)
    if body.get("cart"):
        if not cart_items:
            raise GatewayError(422, "cart_empty", "The cart has no items to place.")
        specs = [cart.spec(i) for i in cart_items]
    else:
        if cart_items:
            raise GatewayError(409, "cart_not_empty",
                               "The cart has items: add this change to the cart and place the cart.",
                               next_action="add_to_cart")
        specs = body["items"]
    _refuse_duplicates(specs)
    # Row locks on PostgreSQL; SQLite serialises writers with BEGIN IMMEDIATE instead.
    account = db.get(type(account), account.id, with_for_update=True, populate_existing=True)
    priced = pricing.price(deps, account, specs, lock=True)
    missing = outstanding(priced.requirements)
    if missing:
        raise GatewayError(409, "requirements_outstanding",
                           "Provide " + " and ".join(r.type.replace("_", " ") for r in missing)
                           + " before placing this order.",
                           requirements=[{"type": r.type, "status": r.status}
                                         for r in priced.requirements],
                           next_action="provide_requirements")
    _refuse_concurrent_changes(db, priced)
    _refuse_unstorable_amounts(priced)
    order = _write(deps, priced, key)
    if body.get("cart"):
        db.execute(delete(CartItem).where(CartItem.account_id == account.id))
    db.flush()
    return view(db, order)


def _refuse_duplicates(specs: list[dict]) -> None:
    # One item per subscription, and one "subscribe now" per product: two would both land on
    # the same expired subscription.
    targets = [s.get("subscription_id") or ("product", s.get("product")) for s in specs]
    if len(targets) != len(set(targets)):
        raise GatewayError(422, "duplicate_subscription",
                           "One item per subscription, and one new subscription per product.")


# NUMERIC(20, 4) holds 16 digits before the point: 12-digit prices times 100 000 licenses can
# go past that, so such an order is refused rather than failing in the database.
MAX_STORED_AMOUNT = Decimal(10) ** 16


def _refuse_unstorable_amounts(priced) -> None:
    t = priced.totals
    amounts = [t.net, t.balance_applied, t.credit_added, t.tax, t.total_due,
               priced.account.credit_balance + t.credit_added]
    amounts += [a for i in priced.items for a in (i.price.credit, i.price.charge)]
    if any(abs(a) >= MAX_STORED_AMOUNT for a in amounts):
        raise GatewayError(422, "amount_too_large",
                           "This order's amounts exceed what can be billed (16 digits before the "
                           "point); split it or lower the licenses.")


def _refuse_concurrent_changes(db, priced) -> None:
    ids = [i.subscription.id for i in priced.items if i.subscription is not None]
    if not ids:
        return
    busy = db.scalar(select(OrderItem.subscription_id).join(Order).where(
        OrderItem.subscription_id.in_(ids), Order.status.in_(OPEN_STATUSES)).limit(1))
    if busy:
        raise GatewayError(409, "subscription_changed",
                           f"Another change to subscription {busy} is in progress.")


def _write(deps, priced, key: str) -> Order:
    db = deps.db
    account, t, cur = priced.account, priced.totals, priced.account.currency
    status = STATUS_BY_ROUTE[priced.route.destination]
    order = Order(
        tenant_id=account.tenant_id, account_id=account.id, status=status,
        route_destination=priced.route.destination, route_reason=priced.route.reason,
        segment=priced.segment, currency=cur, net=t.net, balance_applied=t.balance_applied,
        credit_added=t.credit_added,
        tax_treatment=priced.tax.treatment, tax_country=priced.tax.country,
        tax_rate=priced.tax.rate, tax_amount=t.tax, total_due=t.total_due,
        rates_as_of=RATES_AS_OF, today=deps.clock.today(), placed_by=deps.principal.label,
        idempotency_key=key)
    for n, item in enumerate(priced.items):
        sub = item.subscription
        order.items.append(OrderItem(
            position=n, subscription_id=sub.id if sub else None,
            subscription_version=sub.version if sub else None, product=item.product,
            plan=item.proposed.plan, licenses=item.proposed.licenses,
            licenses_before=sub.licenses if sub else 0,
            plan_before=sub.plan if sub else None,
            billing_period_before=sub.billing_period if sub else None,
            billing_period=item.proposed.billing_period, changes=list(item.kinds),
            route_destination=item.route.destination, route_reason=item.route.reason,
            status=status, credit=item.price.credit, charge=item.price.charge,
            period_start=item.price.period_start, period_end=item.price.period_end))
    db.add(order)
    db.flush()
    dispatch.on_placed(deps, order)
    return order


# -- reading ---------------------------------------------------------------------------------
def view(db, order: Order) -> dict:
    cur = order.currency
    body = {
        "id": order.id, "account_id": order.account_id, "status": order.status,
        "route": {"destination": order.route_destination, "reason": order.route_reason},
        "items": [{"subscription_id": i.subscription_id, "product": i.product, "plan": i.plan,
                   "licenses": i.licenses, "billing_period": i.billing_period,
                   "changes": i.changes,
                   "route": {"destination": i.route_destination, "reason": i.route_reason},
                   "status": i.status, "credit": money(-i.credit, cur) if i.credit else money(i.credit, cur),
                   "charge": money(i.charge, cur), "period_start": i.period_start,
                   "period_end": i.period_end} for i in order.items],
        "currency": cur, "net": money(order.net, cur),
        "balance_applied": money(order.balance_applied, cur),
        "credit_added": money(order.credit_added, cur),
        "tax": {"treatment": order.tax_treatment, "country": order.tax_country,
                "rate": pricing.rate(order.tax_rate), "amount": money(order.tax_amount, cur),
                "rates_as_of": order.rates_as_of.isoformat()},
        "total_due": money(order.total_due, cur),
        "created_at": order.created_at, "completed_at": order.completed_at,
        "po_number": order.po_number,
    }
    if order.note:
        body["note"] = order.note
    if order.status == "completed":
        grown = [i for i in order.items if i.licenses > i.licenses_before]
        if grown:
            body["license_assignment"] = _license_assignment(db, grown)
    return body


def _license_assignment(db, items) -> list[dict]:
    out = []
    for i in items:
        sub_id = i.subscription_id
        if sub_id is None:
            continue
        sub = db.get(Subscription, sub_id)
        out.append({"subscription_id": sub_id,
                    "unassigned": max(0, sub.licenses - assigned_count(db, sub_id)),
                    "assign_url": f"/api/v1/subscriptions/{sub_id}/licenses"})
    return out


def detail(db, order: Order) -> dict:
    """The order with each item's current and proposed terms: what an advisor decides on."""
    body = view(db, order)
    for item, shown in zip(order.items, body["items"], strict=True):
        shown["current"] = None if item.plan_before is None and not item.subscription_id else {
            "plan": item.plan_before, "licenses": item.licenses_before,
            "billing_period": item.billing_period_before}
        shown["proposed"] = {"plan": item.plan, "licenses": item.licenses,
                             "billing_period": item.billing_period,
                             "period_start": item.period_start, "period_end": item.period_end}
    return body


def _visible_order(db, order_id: str) -> Order:
    order = db.get(Order, order_id)
    p = principal()
    if order is None:
        raise not_found("order")
    if p.kind == "advisor":
        if not advisor_sees_account(db, order.account_id):
            raise not_found("order")
        return order
    if p.kind != "service" and order.account_id not in p.memberships:
        raise not_found("order")
    return order


def read(db, order_id: str) -> dict:
    order = _visible_order(db, order_id)
    if principal().kind == "advisor":
        return detail(db, order)
    load_account(db, order.account_id)
    return view(db, order)


def withdraw(deps, order_id: str) -> dict:
    """The billing contact (or a `billing` service) takes back an order waiting for a person."""
    db, who = deps.db, deps.principal
    order = _visible_order(db, order_id)
    if who.kind == "advisor":
        raise not_found("order")
    load_account(db, order.account_id, "bill", who)
    # The order first, then its case or quote: the lock order every decision follows.
    order = db.get(Order, order.id, with_for_update=True, populate_existing=True)
    lifecycle.withdraw(db, order, actor=who.label, now=deps.clock.now())
    db.commit()
    deps.relay()
    return view(db, order)


def list_for_account(db, account_id: str) -> list[dict]:
    account = load_account(db, account_id)
    rows = db.scalars(select(Order).where(Order.account_id == account.id)
                      .order_by(Order.created_at.desc(), Order.id))
    return [view(db, o) for o in rows]
