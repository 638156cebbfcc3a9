"""The order lifecycle's one home: every status transition of an order, and of the advisor case
or portal quote that waits on it, each with its event, audit record and notification.

Queue jobs, placing, and the advisors' and portal use cases call down into this module with
their collaborators (the session, the time, the adapter that applies a change); nothing here
reaches for the app. A transition that the table does not allow is refused with its code and
changes nothing. Notifications are outbox messages written in the transition's transaction: they
are sent by the job queue after it commits (or, for the apply job's completion mail, by that job
itself, after it commits), never inside it.
"""

from __future__ import annotations

import functools
import json
import logging
from datetime import date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import (
    JSON,
    DateTime,
    Integer,
    String,
    Text,
    bindparam,
    cast,
    exists,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.orm.attributes import set_committed_value

from adapters import outbox
from adapters.models import AdvisorCase, CaseEntry, OutboxMessage, PortalQuote
from gateway import logs, metrics
from gateway.errors import GatewayError
from gateway.orders.models import AuditRecord, Event, Order, OrderItem
from gateway.services.views import money
from routing.business_hours import business_due
from tenants.active_licenses import COUNTED
from tenants.db import Money, in_list, new_id
from tenants.models import Account, Advisor, Subscription, Tenant

log = logging.getLogger(__name__)

# -- order statuses and the transition table --------------------------------------------------
PROCESSING, AWAITING_ADVISOR, AWAITING_ACCEPTANCE = "processing", "awaiting_advisor", "awaiting_acceptance"
COMPLETED, REJECTED, WITHDRAWN = "completed", "rejected", "withdrawn"
STATUSES = (PROCESSING, AWAITING_ADVISOR, AWAITING_ACCEPTANCE, COMPLETED, REJECTED, WITHDRAWN)
WAITING_FOR_A_PERSON = frozenset({AWAITING_ADVISOR, AWAITING_ACCEPTANCE})

# Placing: the route picks the first status.
PLACED = {"billing_center": PROCESSING, "corporate_portal": AWAITING_ACCEPTANCE,
          "advisor_queue": AWAITING_ADVISOR}
# action: (statuses it may start from, status it ends in, code when refused)
TRANSITIONS: dict[str, tuple[frozenset[str], str, str]] = {
    "apply": (frozenset({PROCESSING, AWAITING_ADVISOR, AWAITING_ACCEPTANCE}), COMPLETED,
              "order_not_applicable"),
    "reject": (WAITING_FOR_A_PERSON, REJECTED, "order_not_rejectable"),
    "withdraw": (WAITING_FOR_A_PERSON, WITHDRAWN, "order_not_withdrawable"),
    # The adapter gave up after retries: a person takes over; nothing is lost.
    "fail": (frozenset({PROCESSING, AWAITING_ACCEPTANCE}), AWAITING_ADVISOR, "order_not_open"),
}

# Queue jobs, named for the outbox (resolved by name in the worker: no import back).
PROCESS = "gateway.orders.jobs.process_order"
FAILED = "gateway.orders.jobs.order_failed"
SEND_QUOTE = "gateway.orders.jobs.send_portal_quote"
NOTIFY_CASE = "gateway.orders.jobs.notify_case"
NOTIFY_CASE_WITHDRAWN = "gateway.orders.jobs.notify_case_withdrawn"
NOTIFY_ORDER = "gateway.orders.jobs.notify_order"
WITHDRAW_QUOTE = "gateway.orders.jobs.withdraw_portal_quote"

POOL = "corporate-account-services"
QUOTE_VALIDITY = timedelta(days=30)
DEFAULT_CASE_HOURS = 24


class SubscriptionChanged(Exception):
    """The subscription moved on since the order was priced: applying it would be wrong."""


def check(order: Order, action: str) -> str:
    """The status `action` leads to from the order's status, or the refusal with its code."""
    allowed, target, code = TRANSITIONS[action]
    if order.status not in allowed:
        raise GatewayError(409, code, f"This order is {order.status}: it cannot be {_past(action)}.",
                           order_status=order.status)
    return target


def _past(action: str) -> str:
    return {"apply": "applied", "reject": "rejected", "withdraw": "withdrawn",
            "fail": "handed to an advisor"}[action]


def _move(order: Order, status: str, now: datetime) -> None:
    order.status = status
    order.updated_at = now
    for item in order.items:
        item.status = status


def _event(db, type_: str, order_or_case, data: dict) -> None:
    db.add(Event(type=type_, tenant_id=order_or_case.tenant_id, data=data))


def _audit(db, order: Order, actor: str, action: str, data: dict, now: datetime) -> None:
    db.add(AuditRecord(tenant_id=order.tenant_id, account_id=order.account_id, actor=actor,
                       action=action, data={"order_id": order.id, **data}, created_at=now))


def _notify_contacts(db, order: Order, step: str, *, sent_by_caller_at=None) -> None:
    outbox.add(db, NOTIFY_ORDER, dispatched_at=sent_by_caller_at, args=[order.id, step],
               job_id=notify_job_id(order.id, step))


def notify_job_id(order_id: str, step: str) -> str:
    return f"notify-{order_id}-{step}"


# -- placed, then routed ----------------------------------------------------------------------
def place(db, order: Order, *, actor: str, now: datetime, portal_remote: bool) -> None:
    """A new order (already flushed, status from PLACED) is recorded and sent on its route."""
    _placeable(order)
    # Recorded before routing, so that a case opened for the order follows its creation.
    _event(db, "order.created", order, _created(order))
    if order.route_destination == "billing_center":
        outbox.add(db, PROCESS, args=[order.id], job_id=f"order-{order.id}", on_failure=FAILED)
    elif order.route_destination == "corporate_portal":
        open_quote(db, order, now=now, portal_remote=portal_remote)
    else:
        open_case(db, order, order.route_reason, now=now)
    _audit(db, order, actor, "order.placed", _placed(order), now)


def place_at_once(db, order: Order, *, actor: str, now: datetime, also=()) -> None:
    """`place` for a new order to the billing center, on PostgreSQL, in one statement: the
    order, its items, its event, outbox message and audit record (the rows `place` writes), and
    the caller's other new rows `also`, as data-modifying CTEs of the order's INSERT. The order
    is not added to the session: nothing is flushed, nothing left to flush."""
    if order.route_destination != "billing_center":
        raise ValueError("only an order to the billing center is placed in one statement")
    _placeable(order)
    order.id = order.id or new_id("ord")
    order.created_at = order.created_at or now
    order.updated_at = order.updated_at or now
    created = _created(order)
    for k, item in enumerate(order.items):
        item.order_id, item.position = order.id, k
    # The rows `place` writes through the session, as the columns' values (built as entities,
    # only to be read back, they cost more than the statement's binding).
    rows = {"p_order": _values(order), "p_items": [_values(i) for i in order.items],
            "p_event": {"type": "order.created", "tenant_id": order.tenant_id, "data": created,
                        "created_at": now, "fanned_out_at": None},
            "p_outbox": {"job": PROCESS, "created_at": now, "dispatched_at": None,
                         "payload": outbox.payload(args=[order.id], job_id=f"order-{order.id}",
                                                   on_failure=FAILED)},
            "p_audit": {"tenant_id": order.tenant_id, "account_id": order.account_id,
                        "actor": actor, "action": "order.placed", "created_at": now,
                        "data": {"order_id": order.id, **_placed(order)}}}
    rows.update((f"p_also_{k}", _values(row)) for k, row in enumerate(also))
    db.connection().execute(_place_statement(tuple(type(r) for r in also)),
                            {name: _as_json(values) for name, values in rows.items()})
    outbox.written(db)
    # Inserted by the statement, unseen by the session's flush hooks: logged and counted here.
    logs.event("order.created", order.tenant_id, created)
    metrics.order_event(db, "order.created", created)


def _placeable(order: Order) -> None:
    if order.status != PLACED[order.route_destination]:
        raise GatewayError(409, "order_not_placeable", f"A new order cannot start {order.status}.")


def _created(order: Order) -> dict:
    return {"order_id": order.id, "account_id": order.account_id, "status": order.status,
            "route": order.route_destination, "total_due": money(order.total_due, order.currency),
            "currency": order.currency}


def _placed(order: Order) -> dict:
    cur = order.currency
    return {"route": order.route_destination, "reason": order.route_reason,
            "items": [{"subscription_id": i.subscription_id, "product": i.product,
                       "changes": i.changes, "credit": money(i.credit, cur),
                       "charge": money(i.charge, cur)} for i in order.items],
            "net": money(order.net, cur), "total_due": money(order.total_due, cur)}


@functools.cache
def _written(model) -> tuple:
    """The columns a one-statement write sets: all but a serial id (the database numbers it)."""
    return tuple(c for c in model.__table__.columns
                 if not (c.primary_key and isinstance(c.type, Integer)))


def _values(row) -> dict:
    return {c.name: getattr(row, c.key) for c in _written(type(row))}


def _as_json(values) -> str:
    """A row's values (or a list of them) as the JSON object(s) PostgreSQL reads back into the
    table's record type: one parameter per table, however many columns and items."""
    return json.dumps(values, default=_scalar, separators=(",", ":"))


def _scalar(value):
    if isinstance(value, Decimal):
        return str(value)  # exact: NUMERIC reads the digits
    if isinstance(value, date):  # and datetime: naive UTC, as the columns store it
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not a column value")


def _insert_from_json(model, param: str, many: bool = False):
    """INSERT … SELECT from the JSON in `param`, read into the table's record type
    (json_populate_record[set]): the SQL text is the same whatever is written."""
    table, names = model.__table__, [c.name for c in _written(model)]
    read = func.json_populate_recordset if many else func.json_populate_record
    source = read(literal_column(f"NULL::{table.name}"),
                  cast(bindparam(param, type_=Text), JSON)).table_valued(*names)
    return insert(table).from_select(names, select(*[source.c[n] for n in names]))


@functools.lru_cache(maxsize=16)
def _place_statement(also: tuple = ()):
    """`place_at_once`'s statement, with rows of the models `also`, built once: a handful of
    parameters, not one per column (binding and converting those cost more than the insert)."""
    writes = [_insert_from_json(OrderItem, "p_items", many=True).cte("items"),
              _insert_from_json(Event, "p_event").cte("event"),
              _insert_from_json(OutboxMessage, "p_outbox").cte("outbox"),
              _insert_from_json(AuditRecord, "p_audit").cte("audit")]
    writes += [_insert_from_json(model, f"p_also_{k}").cte(f"also_{k}")
               for k, model in enumerate(also)]
    return _insert_from_json(Order, "p_order").add_cte(*writes)


def open_quote(db, order: Order, *, now: datetime, portal_remote: bool) -> PortalQuote:
    quote = PortalQuote(
        tenant_id=order.tenant_id, account_id=order.account_id, order_id=order.id,
        items=[{"subscription_id": i.subscription_id, "product": i.product, "plan": i.plan,
                "licenses": i.licenses, "billing_period": i.billing_period,
                "changes": i.changes} for i in order.items],
        total_due=order.total_due, currency=order.currency, expires_at=now + QUOTE_VALIDITY,
        created_at=now)
    db.add(quote)
    if portal_remote:
        outbox.add(db, SEND_QUOTE, args=[order.id], job_id=f"quote-{order.id}", on_failure=FAILED)
    _notify_contacts(db, order, "awaiting_acceptance")
    return quote


def case_due(tenant: Tenant, now: datetime) -> datetime:
    """When the advisors owe an answer to a case opened `now` for the tenant."""
    return business_due(now, tenant.case_due_hours or DEFAULT_CASE_HOURS)


def open_case(db, order: Order, reason: str, *, now: datetime) -> AdvisorCase:
    account = db.get(Account, order.account_id)
    tenant = db.get(Tenant, order.tenant_id)
    advisor = db.get(Advisor, account.advisor_id) if account.advisor_id else None
    case = AdvisorCase(tenant_id=order.tenant_id, account_id=order.account_id, order_id=order.id,
                       reason=reason, status="open", assigned_advisor_id=account.advisor_id,
                       pool=advisor.pool if advisor else POOL,
                       due_at=case_due(tenant, now),
                       created_at=now)
    db.add(case)
    db.flush()
    _history(db, case, "gateway", "opened", reason, now)
    outbox.add(db, NOTIFY_CASE, args=[case.id], job_id=f"notify-{case.id}")
    _notify_contacts(db, order, "awaiting_advisor")
    _event(db, "advisor_case.opened", order, {
        "case_id": case.id, "order_id": order.id, "account_id": order.account_id,
        "reason": reason, "assigned_advisor_id": case.assigned_advisor_id, "pool": case.pool,
        "total_due": money(order.total_due, order.currency)})
    log.info("advisor case %s opened for order %s", case.id, order.id)
    return case


# -- applied and completed --------------------------------------------------------------------
def apply(db, order: Order, *, actor: str, now: datetime, adapter=None,
          caller_tells_contacts: bool = False) -> None:
    """Every item or none: the subscriptions take the new terms, the balance moves. The change
    goes through `adapter` (the billing center, or the corporate portal as a purchase order);
    None when the outside system has it already (a quote accepted in the external portal).
    `caller_tells_contacts`: the caller sends the completion mail itself once this commits;
    its outbox message is written as dispatched (the relay leaves it), and is given back to
    the relay (`outbox.release`) if the mail cannot go out."""
    target = check(order, "apply")
    if adapter is not None:
        adapter.apply(change_payload(order), db=db)
    sent_at = now if caller_tells_contacts else None
    if db.get_bind().dialect.name == "postgresql" and all(i.subscription_id for i in order.items):
        _apply_at_once(db, order, target, actor=actor, now=now, notify_sent_at=sent_at)
        return
    account = db.get(Account, order.account_id, with_for_update=True, populate_existing=True)
    for item in order.items:
        sub = _target(db, order, item)
        sub.plan, sub.licenses, sub.billing_period = item.plan, item.licenses, item.billing_period
        sub.current_period_start, sub.current_period_end = item.period_start, item.period_end
        sub.status = "active"
        sub.version += 1
        item.subscription_id = sub.id
        _event(db, "subscription.updated", order, {
            "subscription_id": sub.id, "account_id": sub.account_id, "order_id": order.id,
            "plan": sub.plan, "licenses": sub.licenses, "billing_period": sub.billing_period,
            "current_period_start": sub.current_period_start.isoformat(),
            "current_period_end": sub.current_period_end.isoformat()})
    account.credit_balance = account.credit_balance - order.balance_applied + order.credit_added
    _move(order, COMPLETED, now)
    order.completed_at = now
    _event(db, "order.completed", order, {
        "order_id": order.id, "account_id": order.account_id,
        "total_due": money(order.total_due, order.currency), "currency": order.currency})
    _audit(db, order, actor, "order.completed", {"po_number": order.po_number}, now)
    _notify_contacts(db, order, "completed", sent_by_caller_at=sent_at)


def _apply_at_once(db, order: Order, target: str, *, actor: str, now: datetime,
                   notify_sent_at: datetime | None = None) -> None:
    """`apply` for changes to existing subscriptions, on PostgreSQL, in one statement: every
    write as data-modifying CTEs of the order's UPDATE, the account's row (balance and license
    count) first: each subscription's UPDATE waits on it (placing takes the account's row before
    the subscriptions', and so must this). Each subscription changes only if it is still at the
    version the order was priced against; if one is not, the order's row is not updated and the
    whole transaction is refused."""
    order_update = _apply_statement(len(order.items))
    events = [("subscription.updated", {
        "subscription_id": item.subscription_id, "account_id": order.account_id,
        "order_id": order.id, "plan": item.plan, "licenses": item.licenses,
        "billing_period": item.billing_period,
        "current_period_start": item.period_start.isoformat(),
        "current_period_end": item.period_end.isoformat()}) for item in order.items]
    events.append(("order.completed", {
        "order_id": order.id, "account_id": order.account_id,
        "total_due": money(order.total_due, order.currency), "currency": order.currency}))
    params = {"p_moved": order.credit_added - order.balance_applied,
              "p_added": sum(i.licenses for i in order.items),
              "p_sub_ids": [i.subscription_id for i in order.items], "p_order_id": order.id,
              "p_target": target, "p_now": now,
              "p_tenant_id": order.tenant_id, "p_account_id": order.account_id, "p_actor": actor,
              "p_audit_data": {"order_id": order.id, "po_number": order.po_number},
              "p_notify_payload": outbox.payload(args=[order.id, "completed"],
                                                 job_id=notify_job_id(order.id, "completed")),
              "p_notify_sent_at": notify_sent_at}
    for k, item in enumerate(order.items):
        params.update({f"p_sub_id_{k}": item.subscription_id,
                       f"p_sub_version_{k}": item.subscription_version, f"p_plan_{k}": item.plan,
                       f"p_licenses_{k}": item.licenses, f"p_period_{k}": item.billing_period,
                       f"p_start_{k}": item.period_start, f"p_end_{k}": item.period_end})
    for k, (kind, data) in enumerate(events):
        params.update({f"p_event_type_{k}": kind, f"p_event_data_{k}": data})
    if db.connection().execute(order_update, params).first() is None:
        raise SubscriptionChanged(order.items[0].subscription_id)
    if notify_sent_at is None:
        outbox.written(db)
    account = db.identity_map.get(db.identity_key(Account, order.account_id))
    if account is not None:  # the rows moved behind the session's back: read them again if asked
        db.expire(account, ["credit_balance", "active_licenses"])
    for kind, data in events:  # inserted by the CTE, unseen by the session: logged and counted here
        logs.event(kind, order.tenant_id, data)
        metrics.order_event(db, kind, data)
    # The session's copies say what the row now says (without writing it again).
    for key, value in (("status", target), ("updated_at", now), ("completed_at", now)):
        set_committed_value(order, key, value)
    for item in order.items:
        set_committed_value(item, "status", target)


def _events_in_order(count: int, now) -> list:
    """INSERTs of `count` events as CTEs, each fed by the row of the one before: PostgreSQL
    runs a statement's data-modifying CTEs in no set order, and the events' ids (the order
    webhooks deliver them in) must follow the order they happened in. (One multi-row VALUES
    would keep the order but is never in SQLAlchemy's compiled cache.)"""
    columns = ["type", "tenant_id", "data", "created_at"]
    ctes = []
    for k in range(count):
        row = [bindparam(f"p_event_type_{k}", type_=String), bindparam("p_tenant_id", type_=String),
               bindparam(f"p_event_data_{k}", type_=JSON), now]
        source = select(*row) if not ctes else select(*row).select_from(ctes[-1])
        ctes.append(insert(Event).from_select(columns, source).returning(Event.id)
                    .cte(f"event_{k}"))
    return ctes


@functools.lru_cache(maxsize=16)
def _apply_statement(n: int):
    """`_apply_at_once`'s statement for an order of `n` items, built once: building it per
    order (CTEs, generative values) cost more Python than running it."""
    # The subscriptions change behind the ORM's back: the account's license count moves here,
    # by what they counted before (the statement's snapshot) and what they all count after
    # (active).
    # (One subscription by equality: PostgreSQL keeps one generic plan, see services.facts.)
    listed = (Subscription.id == bindparam("p_sub_id_0") if n == 1
              else in_list(Subscription.id, "p_sub_ids"))
    was = (select(func.coalesce(func.sum(Subscription.licenses), 0))
           .where(listed, Subscription.status == COUNTED).scalar_subquery())
    account = (update(Account).where(Account.id == bindparam("p_account_id")).values(
        credit_balance=Account.credit_balance + bindparam("p_moved", type_=Money),
        active_licenses=Account.active_licenses + bindparam("p_added", type_=Integer) - was)
        .returning(Account.id).cte("account"))
    now = bindparam("p_now", type_=DateTime)
    # Each subscription's UPDATE reads the account's CTE first (a one-time filter): the
    # account's row is locked before any subscription's.
    subs = [update(Subscription).where(
        exists(select(account.c.id)),
        Subscription.id == bindparam(f"p_sub_id_{k}"),
        Subscription.version == bindparam(f"p_sub_version_{k}")).values(
        plan=bindparam(f"p_plan_{k}"), licenses=bindparam(f"p_licenses_{k}"),
        billing_period=bindparam(f"p_period_{k}"), current_period_start=bindparam(f"p_start_{k}"),
        current_period_end=bindparam(f"p_end_{k}"), status=COUNTED,
        version=Subscription.version + 1, updated_at=now)
        .returning(Subscription.id).cte(f"sub_{k}") for k in range(n)]
    writes = [
        account,
        *subs,
        update(OrderItem).where(OrderItem.order_id == bindparam("p_order_id"))
        .values(status=bindparam("p_target")).cte("items"),
        *_events_in_order(n + 1, now),
        insert(AuditRecord).values(
            tenant_id=bindparam("p_tenant_id"), account_id=bindparam("p_account_id"),
            actor=bindparam("p_actor"), action="order.completed",
            data=bindparam("p_audit_data", type_=JSON), created_at=now).cte("audit"),
        insert(OutboxMessage).values(job=NOTIFY_ORDER, created_at=now,
                                     payload=bindparam("p_notify_payload", type_=JSON),
                                     dispatched_at=bindparam("p_notify_sent_at", type_=DateTime))
        .cte("notify"),
    ]
    return (
        update(Order).where(Order.id == bindparam("p_order_id"),
                            *[exists(select(s.c.id)) for s in subs])
        .values(status=bindparam("p_target"), updated_at=now, completed_at=now)
        .returning(Order.id).add_cte(*writes))


def _target(db, order: Order, item) -> Subscription:
    if item.subscription_id:
        sub = db.get(Subscription, item.subscription_id, with_for_update=True,
                     populate_existing=True)
        if sub.version != item.subscription_version:
            raise SubscriptionChanged(sub.id)
        return sub
    # "Subscribe now": reactivate the account's expired subscription of the product, or create one.
    sub = db.scalar(select(Subscription).where(
        Subscription.account_id == order.account_id, Subscription.product == item.product,
        Subscription.status == "expired").order_by(Subscription.created_at).limit(1))
    if sub is None:
        sub = Subscription(tenant_id=order.tenant_id, account_id=order.account_id,
                           product=item.product, plan=item.plan, licenses=item.licenses,
                           billing_period=item.billing_period, status="active",
                           current_period_start=item.period_start,
                           current_period_end=item.period_end, version=0)
        db.add(sub)
        db.flush()
    return sub


def change_payload(order: Order) -> dict:
    cur = order.currency
    payload = {"order_id": order.id, "idempotency_key": f"order-{order.id}",
               "tenant_id": order.tenant_id, "account_id": order.account_id, "currency": cur,
               "items": [{"subscription_id": i.subscription_id, "product": i.product,
                          "plan": i.plan, "licenses": i.licenses,
                          "billing_period": i.billing_period,
                          "period_start": i.period_start.isoformat(),
                          "period_end": i.period_end.isoformat()} for i in order.items],
               "balance_applied": money(order.balance_applied, cur),
               "credit_added": money(order.credit_added, cur),
               "total_due": money(order.total_due, cur)}
    if order.po_number:
        payload["po_number"] = order.po_number
    return payload


# -- rejected, withdrawn, failed --------------------------------------------------------------
def reject(db, order: Order, note: str, *, actor: str, now: datetime) -> None:
    _move(order, check(order, "reject"), now)
    order.note = note
    _event(db, "order.rejected", order, {"order_id": order.id, "account_id": order.account_id,
                                         "note": note})
    _audit(db, order, actor, "order.rejected", {"note": note}, now)
    _notify_contacts(db, order, "rejected")


def withdraw(db, order: Order, *, actor: str, now: datetime) -> None:
    """The billing contact takes back an order that waits for a person: its case or portal quote
    is closed, nothing is applied, and the advisor holding the case is told."""
    _move(order, check(order, "withdraw"), now)
    for case in db.scalars(select(AdvisorCase).where(
            AdvisorCase.order_id == order.id, AdvisorCase.status == "open").with_for_update()):
        case.status = "withdrawn"
        case.resolved_at = now
        _history(db, case, actor, "withdrawn", None, now)
        outbox.add(db, NOTIFY_CASE_WITHDRAWN, args=[case.id], job_id=f"withdrawn-{case.id}")
    quote = db.scalar(select(PortalQuote).where(PortalQuote.order_id == order.id)
                      .with_for_update())
    if quote is not None and quote.status == "open":
        quote.status = "withdrawn"
        if quote.external_id:  # already in the external portal: close it there too
            outbox.add(db, WITHDRAW_QUOTE, args=[order.id], job_id=f"withdraw-quote-{order.id}")
    _event(db, "order.withdrawn", order, {"order_id": order.id, "account_id": order.account_id})
    _audit(db, order, actor, "order.withdrawn", {}, now)
    _notify_contacts(db, order, "withdrawn")


def fail(db, order: Order, reason: str, *, now: datetime) -> AdvisorCase:
    _move(order, check(order, "fail"), now)
    _audit(db, order, "gateway", "order.failed", {"reason": reason}, now)
    return open_case(db, order, reason, now=now)


# -- the advisor case ---------------------------------------------------------------------------
def _history(db, case: AdvisorCase, actor: str, action: str, note: str | None,
             now: datetime) -> None:
    db.add(CaseEntry(case_id=case.id, at=now, actor=actor, action=action, note=note))


def live_claim(case: AdvisorCase, now: datetime) -> str | None:
    if case.claimed_by and case.claim_expires_at and case.claim_expires_at > now:
        return case.claimed_by
    return None


def claim(db, case: AdvisorCase, advisor: Advisor, *, now: datetime, lease: timedelta) -> None:
    """The advisor takes the case for a lease. Another advisor's live claim wins; a case that
    is assigned to a dedicated advisor is the pool's only once it is overdue."""
    _open(case)
    holder = live_claim(case, now)
    if holder not in (None, advisor.id):
        raise GatewayError(409, "case_claimed", "Another advisor is working on this case.",
                           claimed_by=holder)
    if case.assigned_advisor_id not in (None, advisor.id) and case.due_at > now:
        raise GatewayError(409, "case_assigned",
                           "This case belongs to the account's dedicated advisor until it is overdue.",
                           assigned_advisor_id=case.assigned_advisor_id, due_at=case.due_at)
    if holder is None:
        _history(db, case, advisor.name, "claimed", None, now)
    case.claimed_by = advisor.id
    case.claim_expires_at = now + lease


def release(db, case: AdvisorCase, advisor: Advisor, *, now: datetime) -> None:
    _open(case)
    if live_claim(case, now) != advisor.id:
        raise GatewayError(409, "case_not_claimed", "You do not hold a claim on this case.")
    case.claimed_by = None
    case.claim_expires_at = None
    _history(db, case, advisor.name, "released", None, now)


def add_note(db, case: AdvisorCase, advisor: Advisor, note: str, *, now: datetime) -> None:
    _history(db, case, advisor.name, "noted", note, now)


def decide(db, case: AdvisorCase, order: Order | None, advisor: Advisor, decision: str,
           note: str | None, *, now: datetime, lease: timedelta, adapter=None) -> None:
    """Approve (apply the order through `adapter`) or reject it with the note; the case is
    resolved either way. The caller locks the order, then the case."""
    claim(db, case, advisor, now=now, lease=lease)
    if order is not None and order.status == AWAITING_ADVISOR:
        if decision == "approve":
            apply(db, order, actor=advisor.name, now=now, adapter=adapter)
        else:
            reject(db, order, note or "Rejected by your account advisor.", actor=advisor.name,
                   now=now)
    case.status, case.decision, case.note = "resolved", decision, note
    case.resolved_at = now
    _history(db, case, advisor.name, "decided", f"{decision}: {note}" if note else decision, now)
    _event(db, "advisor_case.resolved", case, {
        "case_id": case.id, "order_id": case.order_id, "decision": decision, "note": note,
        "advisor_id": advisor.id})


def _open(case: AdvisorCase) -> None:
    if case.status == "withdrawn":
        raise GatewayError(409, "case_withdrawn", "The billing contact withdrew this order.")
    if case.status != "open":
        raise GatewayError(409, "case_resolved", "This case is already resolved.")


# -- the portal quote ---------------------------------------------------------------------------
def decide_quote(db, quote: PortalQuote, order: Order, accept: bool, *, actor: str,
                 now: datetime, note: str | None = None, po_number: str | None = None,
                 adapter=None) -> None:
    """The billing contact (or the external portal) accepts or rejects the quote. The caller
    locks the order, then the quote."""
    if quote.status != "open":
        raise GatewayError(409, "quote_closed", f"This quote is already {quote.status}.")
    if accept:
        if quote.expires_at < now:
            raise GatewayError(409, "quote_expired", "This quote has expired; place the order again.")
        check(order, "apply")
        quote.status = "accepted"
        if po_number:
            order.po_number = po_number
        apply(db, order, actor=actor, now=now, adapter=adapter)
    else:
        check(order, "reject")
        quote.status = "rejected"
        reject(db, order, note or "Rejected by the billing contact in the corporate billing portal.",
               actor=actor, now=now)
