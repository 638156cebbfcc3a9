"""Placing orders: idempotent, priced again at order time, written with their outbox in one
transaction, then carried out from the job queue."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta

from flask import current_app
from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError

from gateway import clock
from gateway.access import load_account, principal
from gateway.errors import GatewayError, not_found
from gateway.orders.jobs import relay_outbox
from gateway.orders.models import OPEN_STATUSES, CartItem, IdempotencyRecord, Order, OrderItem
from gateway.services import cart, events, pricing
from gateway.services.licenses import assigned_count
from gateway.services.views import money
from routing.requirements import outstanding
from routing.vat import RATES_AS_OF
from tenants.db import utcnow
from tenants.models import Subscription

MAX_KEY_LENGTH = 200  # the column's width
STATUS_BY_ROUTE = {"billing_center": "processing", "corporate_portal": "awaiting_acceptance",
                   "advisor_queue": "awaiting_advisor"}


@dataclass(frozen=True)
class Placed:
    """A new order's answer, or the stored first answer of a replayed key (already JSON)."""

    body: dict
    status: int = 201
    replay: bool = False


def place(db, account_id: str, body: dict, key: str | None) -> Placed:
    account = load_account(db, account_id, "bill")
    if not key:
        raise GatewayError(400, "idempotency_key_required", "Send an Idempotency-Key header.")
    if len(key) > MAX_KEY_LENGTH:
        raise GatewayError(400, "idempotency_key_invalid",
                           f"An Idempotency-Key has at most {MAX_KEY_LENGTH} characters.")
    scope = f"{principal().label}|{account.id}"
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    replay = _claim_key(db, scope, key, digest)
    if replay is not None:
        return replay
    try:
        answer = _place(db, account, body, key)
    except BaseException as exc:
        db.rollback()
        # A refusal places nothing, so the key may be used again once the caller has fixed it.
        db.execute(delete(IdempotencyRecord).where(IdempotencyRecord.scope == scope,
                                                   IdempotencyRecord.key == key))
        if isinstance(exc, GatewayError):
            events.audit(db, tenant_id=account.tenant_id, account_id=account.id,
                         actor=principal().label, action="order.refused",
                         data={"error": exc.error, "message": exc.message, "request": body})
        db.commit()
        raise
    # Stored with the order, in its transaction: a replay answers exactly this.
    db.execute(update(IdempotencyRecord)
               .where(IdempotencyRecord.scope == scope, IdempotencyRecord.key == key)
               .values(response_status=201, response_body=json.loads(current_app.json.dumps(answer))))
    db.commit()
    relay_outbox()
    return Placed(answer)


def _claim_key(db, scope: str, key: str, digest: str):
    db.add(IdempotencyRecord(scope=scope, key=key, request_hash=digest))
    try:
        db.commit()
        return None
    except IntegrityError:
        db.rollback()
    if _forget_stale_key(db, scope, key):
        return _claim_key(db, scope, key, digest)
    record = db.scalar(select(IdempotencyRecord).where(IdempotencyRecord.scope == scope,
                                                       IdempotencyRecord.key == key))
    if record is None:  # the first attempt was refused and released the key meanwhile
        return _claim_key(db, scope, key, digest)
    if record.request_hash != digest:
        raise GatewayError(422, "idempotency_key_reused",
                           "This Idempotency-Key was used with another request body.")
    if record.response_status is None:
        raise GatewayError(409, "idempotency_key_in_use",
                           "A request with this Idempotency-Key is still being processed.")
    return Placed(record.response_body, record.response_status, replay=True)


def _forget_stale_key(db, scope: str, key: str) -> bool:
    """An expired key is forgotten; so is a claim whose request died before answering (the
    order and its answer commit together, so such a claim placed nothing)."""
    cfg = current_app.config
    now = utcnow()
    ttl = timedelta(hours=cfg["IDEMPOTENCY_TTL_HOURS"])
    lease = timedelta(seconds=cfg["IDEMPOTENCY_LEASE_SECONDS"])
    gone = db.execute(delete(IdempotencyRecord).where(
        IdempotencyRecord.scope == scope, IdempotencyRecord.key == key,
        (IdempotencyRecord.created_at < now - ttl)
        | (IdempotencyRecord.response_status.is_(None) & (IdempotencyRecord.created_at < now - lease))))
    db.commit()
    return gone.rowcount > 0


def _place(db, account, body: dict, key: str) -> dict:
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
    priced = pricing.price(db, account, specs, lock=True)
    missing = outstanding(priced.requirements)
    if missing:
        raise GatewayError(409, "requirements_outstanding",
                           "Provide " + " and ".join(r.type.replace("_", " ") for r in missing)
                           + " before placing this order.",
                           requirements=[{"type": r.type, "status": r.status}
                                         for r in priced.requirements],
                           next_action="provide_requirements")
    _refuse_concurrent_changes(db, priced)
    order = _write(db, priced, key)
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


def _refuse_concurrent_changes(db, priced) -> None:
    ids = [i.subscription.id for i in priced.items if i.subscription is not None]
    if not ids:
        return
    busy = db.scalar(select(OrderItem.subscription_id).join(Order).where(
        OrderItem.subscription_id.in_(ids), Order.status.in_(OPEN_STATUSES)).limit(1))
    if busy:
        raise GatewayError(409, "subscription_changed",
                           f"Another change to subscription {busy} is in progress.")


def _write(db, priced, key: str) -> Order:
    account, t, cur = priced.account, priced.totals, priced.account.currency
    status = STATUS_BY_ROUTE[priced.route.destination]
    order = Order(
        tenant_id=account.tenant_id, account_id=account.id, status=status,
        route_destination=priced.route.destination, route_reason=priced.route.reason,
        segment=priced.segment, currency=cur, net=t.net, balance_applied=t.balance_applied,
        credit_added=t.credit_added,
        tax_treatment=priced.tax.treatment, tax_country=priced.tax.country,
        tax_rate=priced.tax.rate, tax_amount=t.tax, total_due=t.total_due,
        rates_as_of=RATES_AS_OF, today=clock.today(), placed_by=principal().label,
        idempotency_key=key)
    for n, item in enumerate(priced.items):
        sub = item.subscription
        order.items.append(OrderItem(
            position=n, subscription_id=sub.id if sub else None,
            subscription_version=sub.version if sub else None, product=item.product,
            plan=item.proposed.plan, licenses=item.proposed.licenses,
            licenses_before=sub.licenses if sub else 0,
            billing_period=item.proposed.billing_period, changes=list(item.kinds),
            route_destination=item.route.destination, route_reason=item.route.reason,
            status=status, credit=item.price.credit, charge=item.price.charge,
            period_start=item.price.period_start, period_end=item.price.period_end))
    db.add(order)
    db.flush()
    from gateway.orders import dispatch

    # Recorded before dispatch, so that a case opened for the order follows its creation.
    events.record(db, "order.created", order.tenant_id, {
        "order_id": order.id, "account_id": order.account_id, "status": order.status,
        "route": order.route_destination, "total_due": money(order.total_due, cur),
        "currency": cur})
    dispatch.on_placed(db, order)
    events.audit(db, tenant_id=order.tenant_id, account_id=order.account_id,
                 actor=principal().label, action="order.placed", data={
                     "order_id": order.id, "route": order.route_destination,
                     "reason": order.route_reason,
                     "items": [{"subscription_id": i.subscription_id, "product": i.product,
                                "changes": i.changes, "credit": money(i.credit, cur),
                                "charge": money(i.charge, cur)} for i in order.items],
                     "net": money(order.net, cur), "total_due": money(order.total_due, cur)})
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


def read(db, order_id: str) -> dict:
    order = db.get(Order, order_id)
    p = principal()
    if order is None or (p.kind != "service" and order.account_id not in p.memberships):
        raise not_found("order")
    load_account(db, order.account_id)
    return view(db, order)


def list_for_account(db, account_id: str) -> list[dict]:
    account = load_account(db, account_id)
    rows = db.scalars(select(Order).where(Order.account_id == account.id)
                      .order_by(Order.created_at.desc(), Order.id))
    return [view(db, o) for o in rows]
