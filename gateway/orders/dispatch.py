"""Where a placed order goes next: the job queue, the corporate portal or an advisor."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app

from adapters import outbox
from adapters.models import AdvisorCase, PortalQuote
from gateway.services import events
from gateway.services.views import money
from tenants.db import session_clock
from tenants.models import Account, Tenant

PROCESS = "gateway.orders.jobs.process_order"
FAILED = "gateway.orders.jobs.order_failed"
SEND_QUOTE = "gateway.orders.jobs.send_portal_quote"
NOTIFY_CASE = "gateway.orders.jobs.notify_case"
POOL = "corporate-account-services"
QUOTE_VALIDITY = timedelta(days=30)


def on_placed(db, order, clock=None) -> None:
    clock = clock or session_clock(db)
    if order.route_destination == "billing_center":
        outbox.add(db, PROCESS, args=[order.id], job_id=f"order-{order.id}", on_failure=FAILED)
    elif order.route_destination == "corporate_portal":
        db.add(PortalQuote(
            tenant_id=order.tenant_id, account_id=order.account_id, order_id=order.id,
            items=[{"subscription_id": i.subscription_id, "product": i.product, "plan": i.plan,
                    "licenses": i.licenses, "billing_period": i.billing_period,
                    "changes": i.changes} for i in order.items],
            total_due=order.total_due, currency=order.currency,
            expires_at=clock.now() + QUOTE_VALIDITY))
        if current_app.extensions["gateway.corporate_portal"].remote:
            outbox.add(db, SEND_QUOTE, args=[order.id], job_id=f"quote-{order.id}", on_failure=FAILED)
    else:
        open_case(db, order, order.route_reason, clock)


def open_case(db, order, reason: str, clock=None) -> AdvisorCase:
    clock = clock or session_clock(db)
    account = db.get(Account, order.account_id)
    tenant = db.get(Tenant, order.tenant_id)
    hours = tenant.case_due_hours or 24
    case = AdvisorCase(tenant_id=order.tenant_id, account_id=order.account_id, order_id=order.id,
                       reason=reason, status="open", assigned_advisor_id=account.advisor_id,
                       pool=POOL if account.advisor_id is None else _pool(db, account.advisor_id),
                       due_at=_business_due(clock.now(), hours))
    db.add(case)
    db.flush()
    outbox.add(db, NOTIFY_CASE, args=[case.id], job_id=f"notify-{case.id}")
    events.record(db, "advisor_case.opened", order.tenant_id, {
        "case_id": case.id, "order_id": order.id, "account_id": order.account_id,
        "reason": reason, "assigned_advisor_id": case.assigned_advisor_id, "pool": case.pool,
        "total_due": money(order.total_due, order.currency)})
    current_app.logger.info("advisor case %s opened for order %s", case.id, order.id)
    return case


def _pool(db, advisor_id: str) -> str:
    from tenants.models import Advisor

    advisor = db.get(Advisor, advisor_id)
    return advisor.pool if advisor else POOL


def _business_due(start, hours: int):
    """Service level counted in business hours: weekends do not count."""
    due = start
    left = hours
    while left > 0:
        due += timedelta(hours=1)
        if due.weekday() < 5:
            left -= 1
    return due
