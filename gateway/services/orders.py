"""Placing orders: idempotent, priced again at order time, written with their outbox in one
transaction, then carried out from the job queue.

The happy path is a fixed number of statements whatever the account holds: lock the account and
the subscriptions (1), read what pricing needs and the key's record (1), write the order, its
items, event, outbox row, audit record and the key's answer (6), one commit. The key is claimed
in that same transaction: a refusal or a crash rolls it back with the order, so the key is free
again, and a concurrent duplicate waits on the account's row lock or, if it holds the key's
advisory lock, is told `idempotency_key_in_use`."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from sqlalchemy import BigInteger, bindparam, delete, func, select, true
from sqlalchemy.exc import IntegrityError

from gateway import logs
from gateway.access import advisor_sees_account, check_rights, load_account, principal
from gateway.errors import GatewayError, not_found
from gateway.orders import dispatch, lifecycle
from gateway.orders.models import CartItem, IdempotencyRecord, Order, OrderItem
from gateway.services import cart, events, facts, pricing
from gateway.services.licenses import assigned_count
from gateway.services.views import money
from routing.requirements import outstanding
from routing.vat import RATES_AS_OF
from tenants import transactions
from tenants.db import in_list, new_id
from tenants.models import Account, Subscription

MAX_KEY_LENGTH = 200  # the column's width
MAX_SCOPE_LENGTH = 400  # the column's width
STATUS_BY_ROUTE = lifecycle.PLACED
KEY_ERRORS = frozenset({"idempotency_key_reused", "idempotency_key_in_use"})


@dataclass(frozen=True)
class Placed:
    """A new order's answer, or the stored first answer of a replayed key (already JSON)."""

    body: dict
    status: int = 201
    replay: bool = False
    text: str | None = None  # the exact JSON text answered first, when it was stored


class _Attempt:
    """What a refusal's audit record needs once the account is known."""

    account: Account | None = None


def place(deps, account_id: str, body: dict, key: str | None, render=None, *,
          _retry: bool = True) -> Placed:
    """`render(answer) -> str` gives the exact JSON text the caller gets (stored for replays)."""
    db, who = deps.db, deps.principal
    check_rights(db, who, account_id, "bill")
    scope = claim_scope(who.label, account_id)
    digest = hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()
    attempt = _Attempt()
    try:
        placed = _place(deps, account_id, body, scope, key, digest, attempt, render)
        if placed.replay:
            transactions.finish(db)  # nothing written: let the row locks go
            return placed
        db.commit()
    except IntegrityError:
        # The key's row arrived meanwhile (a claim without the advisory lock: SQLite, an old
        # process): the order rolls back with it; asking again replays or refuses properly.
        db.rollback()
        if not _retry:
            raise
        return place(deps, account_id, body, key, render, _retry=False)
    except BaseException as exc:
        # Nothing was written, the key's claim included: it may be used again at once. (A
        # refusal ends a transaction that only read: see tenants.transactions.)
        try:
            if isinstance(exc, GatewayError):
                transactions.finish(db)
            else:
                db.rollback()
            if isinstance(exc, GatewayError) and exc.error not in KEY_ERRORS and attempt.account:
                account = attempt.account
                events.audit(db, tenant_id=account.tenant_id, account_id=account.id,
                             actor=who.label, action="order.refused",
                             data={"error": exc.error, "message": exc.message, "request": body})
                db.commit()
        except Exception:  # the database went away: the original error says so
            pass
        raise
    deps.relay()
    return placed


def claim_scope(label: str, account_id: str) -> str:
    """Who (kind, issuer, subject) and which account; hashed when it would not fit its column
    (a long issuer URL plus a long subject)."""
    scope = f"{label}|{account_id}"
    if len(scope) <= MAX_SCOPE_LENGTH:
        return scope
    return "sha256:" + hashlib.sha256(scope.encode("utf-8")).hexdigest()


def _lock_statement(subscriptions: int, key_lock: bool):
    """Row locks on the account (and the subscriptions asked for: none, one, or several), in
    one statement: account first, as every writer of these rows takes them. With `key_lock`
    (PostgreSQL), a transaction-scoped advisory lock on the key, tried without waiting (true
    when taken); without it the column is simply true (SQLite serialises writers at BEGIN
    IMMEDIATE). One subscription is matched by equality: PostgreSQL then keeps one generic
    plan for the prepared statement instead of planning it at each execution."""
    locked = (func.pg_try_advisory_xact_lock(bindparam("key_hash", type_=BigInteger))
              if key_lock else true()).label("key_locked")
    if subscriptions:
        return (select(*facts.ACCOUNT, *facts.SUBSCRIPTION, locked)
                .select_from(Account).join(Subscription, Subscription.account_id == Account.id)
                .where(Account.id == bindparam("account_id"),
                       Subscription.id == bindparam("sub_id") if subscriptions == 1
                       else in_list(Subscription.id, "sub_ids"))
                .with_for_update())
    return select(*facts.ACCOUNT, locked).where(Account.id == bindparam("account_id")).with_for_update()


# Built once (building them per order cost more Python than running them): by the number of
# subscriptions (0, 1, several) and whether the key is locked.
_LOCKS = {(s, k): _lock_statement(s, k) for s in (0, 1, 2) for k in (True, False)}


def _key_hash(scope: str, key: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{scope}\n{key}".encode()).digest()[:8], "big",
                          signed=True)


def _lock(db, account_id: str, sub_ids: list[str], key_hash: int | None):
    """Returns (account, subs, key_locked), as `facts.Record`s; `key_hash` None: no advisory
    lock to take."""
    key_lock = key_hash is not None and db.get_bind().dialect.name == "postgresql"
    params = {"account_id": account_id, "key_hash": key_hash}
    run = db.connection().execute
    if sub_ids:
        rows = run(_LOCKS[min(len(sub_ids), 2), key_lock],
                   dict(params, sub_ids=sub_ids, sub_id=sub_ids[0])).all()
        if rows:
            subs = (facts.subscription_of(r) for r in rows)
            return facts.account_of(rows[0]), {s.id: s for s in subs}, bool(rows[0].key_locked)
    row = run(_LOCKS[0, key_lock], params).first()
    return (facts.account_of(row), {}, bool(row.key_locked)) if row else (None, {}, False)


def _replay_or_refuse(deps, record_id: int, digest: str, locked: bool) -> Placed | None:
    """The key was seen before: its first answer, or why not; None if it may be used anew."""
    db, cfg = deps.db, deps.settings
    record = db.get(IdempotencyRecord, record_id)
    now = deps.clock.now()
    expired = record.created_at < now - timedelta(hours=cfg["IDEMPOTENCY_TTL_HOURS"])
    # A claim without an answer was left by a request that died (claims of older versions
    # committed apart from the order): it placed nothing, and is let go after its lease.
    dead = record.response_status is None and record.created_at < now - timedelta(
        seconds=cfg["IDEMPOTENCY_LEASE_SECONDS"])
    if (expired or dead) and locked:
        db.execute(delete(IdempotencyRecord).where(IdempotencyRecord.id == record.id))
        return None
    if record.request_hash != digest:
        raise GatewayError(422, "idempotency_key_reused",
                           "This Idempotency-Key was used with another request body.")
    if record.response_status is None:
        raise _in_use()
    body = json.loads(record.response_text) if record.response_text else record.response_body
    return Placed(body, record.response_status, replay=True, text=record.response_text)


def _in_use() -> GatewayError:
    return GatewayError(409, "idempotency_key_in_use",
                        "A request with this Idempotency-Key is still being processed.")


def _place(deps, account_id: str, body: dict, scope: str, key: str, digest: str,
           attempt: _Attempt, render) -> Placed:
    db = deps.db
    items = None if body.get("cart") else body["items"]
    sub_ids = [s["subscription_id"] for s in items or () if s.get("subscription_id")]
    valid_key = bool(key) and len(key) <= MAX_KEY_LENGTH
    account, subs, locked = _lock(db, account_id, sub_ids,
                                  _key_hash(scope, key) if valid_key else None)
    if account is None:
        raise not_found("account")
    if not key:
        raise GatewayError(400, "idempotency_key_required", "Send an Idempotency-Key header.")
    if not valid_key:
        raise GatewayError(400, "idempotency_key_invalid",
                           f"An Idempotency-Key has at most {MAX_KEY_LENGTH} characters.")
    known = facts.load(db, deps.cache, account.id, sub_ids, scope, key, account.tenant_id)
    if known.idempotency_id is not None:
        replay = _replay_or_refuse(deps, known.idempotency_id, digest, locked)
        if replay is not None:
            return replay
    elif not locked:  # another request holds the key and has not committed yet
        raise _in_use()
    attempt.account = account
    logs.note_tenant(account.tenant_id)
    if items is None:
        cart_items = cart.items(db, account.id)
        if not cart_items:
            raise GatewayError(422, "cart_empty", "The cart has no items to place.")
        specs = [cart.spec(i) for i in cart_items]
        _refuse_duplicates(specs)
        sub_ids = [s["subscription_id"] for s in specs if s.get("subscription_id")]
        if sub_ids:
            subs = {s.id: s for s in db.scalars(select(Subscription).where(
                Subscription.id.in_(sub_ids)).with_for_update())}
        known = facts.load(db, deps.cache, account.id, sub_ids)
    else:
        if known.cart_has_items:
            raise GatewayError(409, "cart_not_empty",
                               "The cart has items: add this change to the cart and place the cart.",
                               next_action="add_to_cart")
        specs = items
        _refuse_duplicates(specs)
    priced = pricing.price(deps, account, specs, subs=subs, facts=known)
    missing = outstanding(priced.requirements)
    if missing:
        raise GatewayError(409, "requirements_outstanding",
                           "Provide " + " and ".join(r.type.replace("_", " ") for r in missing)
                           + " before placing this order.",
                           requirements=[{"type": r.type, "status": r.status}
                                         for r in priced.requirements],
                           next_action="provide_requirements")
    busy = [i.subscription.id for i in priced.items
            if i.subscription is not None and i.subscription.id in known.busy]
    if busy:
        raise GatewayError(409, "subscription_changed",
                           f"Another change to subscription {busy[0]} is in progress.")
    _refuse_unstorable_amounts(priced)
    order = _new_order(deps, priced, key)
    # The hot path (PostgreSQL, to the billing center): written in one statement with the key's
    # answer, below; no flush, the order stays out of the session.
    at_once = (order.route_destination == "billing_center"
               and db.get_bind().dialect.name == "postgresql")
    if not at_once:
        db.add(order)
        db.flush()  # before the rows that refer to it (cases, portal quotes: no relationship)
        dispatch.on_placed(deps, order)
    if items is None:
        db.execute(delete(CartItem).where(CartItem.account_id == account.id))
    answer = view(db, order)
    text = render(answer) if render else None
    # Stored with the order, in its transaction: a replay answers exactly these bytes (the text
    # alone when there is one: the body is read back from it).
    record = IdempotencyRecord(scope=scope, key=key, request_hash=digest, response_status=201,
                               response_text=text, created_at=order.created_at,
                               response_body=None if text else json.loads(deps.dumps(answer)))
    if at_once:
        dispatch.on_placed_at_once(deps, order, also=(record,))
    else:
        db.add(record)  # written by the flush at commit, with what placing recorded
    return Placed(answer, text=text)


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


def _new_order(deps, priced, key: str) -> Order:
    """The order as priced, with its id and time: not in the session yet."""
    now = deps.clock.now()
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
        idempotency_key=key, id=new_id("ord"), created_at=now, updated_at=now)
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
