"""Carrying out an order: applied whole through the account's adapter, or not at all."""

from __future__ import annotations

from flask import current_app
from sqlalchemy import select

from gateway import logs, metrics
from gateway.database import session
from gateway.orders.dispatch import open_case
from gateway.orders.models import Order
from gateway.services import events
from gateway.services.views import money
from tenants.db import utcnow
from tenants.models import Account, Contact, Membership, Subscription


class SubscriptionChanged(Exception):
    pass


def process_order(order_id: str) -> None:
    """Queue job for billing-center orders; safe to run twice."""
    db = session()
    order = db.get(Order, order_id, with_for_update=True)
    if order is None or order.status != "processing":
        return
    apply(db, order)
    db.commit()
    notify_completed(db, order)


def order_failed(order_id: str) -> None:
    """Retries are exhausted: a person takes over; the order is not lost."""
    db = session()
    order = db.get(Order, order_id, with_for_update=True)
    if order is None or order.status not in ("processing", "awaiting_acceptance"):
        return
    order.status = "awaiting_advisor"
    for item in order.items:
        item.status = "awaiting_advisor"
    open_case(db, order, "adapter_failed: the billing center did not apply the order after retries")
    db.commit()
    logs.step("order failed", order_id=order.id, tenant=order.tenant_id, reason="adapter_failed")
    metrics.count_order("failed", order.route_destination)


def apply(db, order: Order, *, through_adapter: bool = True) -> None:
    """Every item or none: the subscriptions take the new terms, the balance moves. The change
    goes through the adapter of the account's segment: the billing center for self-serve
    accounts, the corporate portal (as a purchase order) for enterprise ones."""
    if through_adapter:
        adapter = "gateway.corporate_portal" if order.segment == "enterprise" else "gateway.billing_center"
        current_app.extensions[adapter].apply(change_payload(order), db=db)
    account = db.get(Account, order.account_id, with_for_update=True, populate_existing=True)
    for item in order.items:
        sub = _target(db, order, item)
        sub.plan, sub.licenses, sub.billing_period = item.plan, item.licenses, item.billing_period
        sub.current_period_start, sub.current_period_end = item.period_start, item.period_end
        sub.status = "active"
        sub.version += 1
        item.subscription_id = sub.id
        item.status = "completed"
        events.record(db, "subscription.updated", order.tenant_id, {
            "subscription_id": sub.id, "account_id": sub.account_id, "order_id": order.id,
            "plan": sub.plan, "licenses": sub.licenses, "billing_period": sub.billing_period,
            "current_period_start": sub.current_period_start.isoformat(),
            "current_period_end": sub.current_period_end.isoformat()})
    account.credit_balance = account.credit_balance - order.balance_applied + order.credit_added
    order.status = "completed"
    order.completed_at = utcnow()
    events.record(db, "order.completed", order.tenant_id, {
        "order_id": order.id, "account_id": order.account_id,
        "total_due": money(order.total_due, order.currency), "currency": order.currency})


def _target(db, order, item) -> Subscription:
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
    return {"order_id": order.id, "idempotency_key": f"order-{order.id}",
            "tenant_id": order.tenant_id, "account_id": order.account_id, "currency": cur,
            "items": [{"subscription_id": i.subscription_id, "product": i.product, "plan": i.plan,
                       "licenses": i.licenses, "billing_period": i.billing_period,
                       "period_start": i.period_start.isoformat(),
                       "period_end": i.period_end.isoformat()} for i in order.items],
            "balance_applied": money(order.balance_applied, cur),
            "credit_added": money(order.credit_added, cur),
            "total_due": money(order.total_due, cur)}


def notify_completed(db, order: Order) -> None:
    """The confirmation to the billing contacts, with the details of the purchase."""
    notifier = current_app.extensions.get("gateway.notifier")
    if notifier is None:
        return
    rows = db.execute(select(Contact.email, Membership.roles)
                      .join(Membership, Membership.contact_id == Contact.id)
                      .where(Membership.account_id == order.account_id)).all()
    cur = order.currency
    lines = [f"Order {order.id} is complete. Your new billing period starts today.", ""]
    for i in order.items:
        lines.append(f"- {i.product}: {i.plan}, {i.licenses} licenses, {i.billing_period}, "
                     f"{i.period_start.isoformat()} to {i.period_end.isoformat()}: "
                     f"charge {money(i.charge, cur)} {cur}, credit -{money(i.credit, cur)} {cur}")
    lines += ["", f"Net {money(order.net, cur)} {cur}; balance applied "
              f"{money(order.balance_applied, cur)}; credit added {money(order.credit_added, cur)}; "
              f"tax ({order.tax_treatment}) {money(order.tax_amount, cur)}; "
              f"total due {money(order.total_due, cur)} {cur}."]
    for email, roles in rows:
        if "billing_contact" in (roles or ()):
            notifier.send(email, f"Your subscription change ({order.id})", "\n".join(lines))


# -- the corporate portal over HTTP ----------------------------------------------------------
def send_portal_quote(order_id: str) -> None:
    """Queue job: the enterprise order becomes a quote in the external portal (once per order)."""
    from adapters.models import PortalQuote

    db = session()
    quote = db.scalar(select(PortalQuote).where(PortalQuote.order_id == order_id).with_for_update())
    if quote is None or quote.external_id or quote.status != "open":
        return
    order = db.get(Order, order_id)
    payload = change_payload(order)
    answer = current_app.extensions["gateway.corporate_portal"].create_quote({
        "order_id": order.id, "idempotency_key": f"quote-{order.id}",
        "account_id": order.account_id, "items": payload["items"],
        "total_due": payload["total_due"], "currency": order.currency,
        "expires_at": quote.expires_at.isoformat() + "Z"})
    quote.external_id = str(answer["id"])
    db.commit()


def poll_portal_quotes(limit: int = 100) -> int:
    """Reads the outcome of open quotes in the external portal; returns how many moved on."""
    from adapters.models import PortalQuote
    from gateway.services.people_queue import reject

    portal = current_app.extensions["gateway.corporate_portal"]
    if not portal.remote:
        return 0
    db = session()
    open_ids = db.scalars(select(PortalQuote.id).where(
        PortalQuote.status == "open", PortalQuote.external_id.is_not(None)).limit(limit)).all()
    moved = 0
    for quote_id in open_ids:
        quote = db.get(PortalQuote, quote_id, with_for_update=True)
        answer = portal.quote_status(quote.external_id)
        if quote.status != "open" or answer["status"] == "open":
            db.rollback()
            continue
        order = db.get(Order, quote.order_id, with_for_update=True)
        quote.status = answer["status"]
        if answer["status"] == "accepted":
            apply(db, order, through_adapter=False)  # accepted in the portal: it has it already
        else:
            reject(db, order, answer.get("note") or "Rejected in the corporate billing portal.")
        db.commit()
        if order.status == "completed":
            notify_completed(db, order)
        moved += 1
    return moved


# -- advisors --------------------------------------------------------------------------------
def notify_case(case_id: str) -> None:
    """Queue job: tell the case's advisor (or every advisor of its pool) that it is waiting."""
    from adapters.models import AdvisorCase
    from tenants.models import Advisor

    notifier = current_app.extensions.get("gateway.notifier")
    db = session()
    case = db.get(AdvisorCase, case_id)
    if notifier is None or case is None:
        return
    if case.assigned_advisor_id:
        advisors = [db.get(Advisor, case.assigned_advisor_id)]
    else:
        advisors = db.scalars(select(Advisor).where(Advisor.pool == case.pool)).all()
    body = (f"Case {case.id} for account {case.account_id} (order {case.order_id}) is waiting.\n"
            f"Reason: {case.reason}\nDue: {case.due_at.isoformat()}Z\n"
            f"Claim it: POST /api/v1/advisor/cases/{case.id}/claim")
    for advisor in advisors:
        notifier.send(advisor.email, f"New case {case.id}", body)


def requeue_stuck_orders() -> int:
    """Orders still `processing` long after their job was sent (a worker or the whole process
    died with the job in hand, Redis lost it) are sent again; the job is idempotent."""
    from datetime import timedelta

    from adapters import outbox
    from gateway.orders.dispatch import FAILED, PROCESS

    db = session()
    cutoff = utcnow() - timedelta(seconds=current_app.config["STUCK_ORDER_SECONDS"])
    stuck = db.scalars(select(Order).where(Order.status == "processing", Order.updated_at < cutoff)
                       .with_for_update(skip_locked=True).limit(100)).all()
    for order in stuck:
        outbox.add(db, PROCESS, args=[order.id], on_failure=FAILED)
        order.updated_at = utcnow()
    db.commit()
    return len(stuck)


def relay_outbox() -> None:
    """Hands what the outbox holds to the job queue."""
    from adapters.outbox import relay

    relay(current_app.extensions["gateway.db"].sessionmaker, current_app.extensions["gateway.queue"])


def tick() -> None:
    """The periodic pass beside the workers: send what the outbox holds, read portal outcomes,
    and send again what got stuck."""
    from gateway.services.vat_numbers import recheck_due
    from gateway.webhooks.delivery import schedule_due

    requeue_stuck_orders()
    relay_outbox()
    poll_portal_quotes()
    schedule_due()
    recheck_due()
