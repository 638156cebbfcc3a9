"""The corporate portal's quotes and the advisors' queue: where a person decides."""

from __future__ import annotations

from datetime import timedelta

from flask import current_app
from sqlalchemy import or_, select

from adapters.errors import AdapterError
from adapters.models import AdvisorCase, PortalQuote
from gateway import logs
from gateway.access import load_account, principal, require_advisor
from gateway.errors import GatewayError, not_found
from gateway.orders import jobs
from gateway.orders.models import Order
from gateway.services import events
from gateway.services.views import money
from tenants.db import utcnow


# -- corporate portal (embedded) -------------------------------------------------------------
def quote_view(q: PortalQuote) -> dict:
    return {"id": q.id, "order_id": q.order_id, "account_id": q.account_id, "status": q.status,
            "items": q.items, "total_due": money(q.total_due, q.currency), "currency": q.currency,
            "expires_at": q.expires_at, "created_at": q.created_at}


def list_quotes(db, account_id: str) -> list[dict]:
    account = load_account(db, account_id)
    rows = db.scalars(select(PortalQuote).where(PortalQuote.account_id == account.id)
                      .order_by(PortalQuote.created_at.desc()))
    return [quote_view(q) for q in rows]


def decide_quote(db, quote_id: str, accept: bool, note: str | None = None) -> dict:
    q = db.get(PortalQuote, quote_id, with_for_update=True)
    p = principal()
    if q is None or (p.kind != "service" and q.account_id not in p.memberships):
        raise not_found("portal quote")
    load_account(db, q.account_id, "bill")
    if q.status != "open":
        raise GatewayError(409, "quote_closed", f"This quote is already {q.status}.")
    if q.expires_at < utcnow():
        raise GatewayError(409, "quote_expired", "This quote has expired; place the order again.")
    order = db.get(Order, q.order_id, with_for_update=True)
    if accept:
        q.status = "accepted"
        _apply_or_refuse(db, order)
    else:
        q.status = "rejected"
        reject(db, order, note or "Rejected by the billing contact in the corporate billing portal.")
    db.commit()
    if accept:
        jobs.notify_completed(db, order)
    return quote_view(q)


def _apply_or_refuse(db, order: Order) -> None:
    try:
        jobs.apply(db, order)
    except AdapterError as exc:
        # The outside system is down or refused: nothing changes, the case stays with the advisor.
        db.rollback()
        raise GatewayError(503 if exc.retryable else 502, "adapter_unavailable",
                           f"The {exc.system or 'billing system'} did not apply the change: {exc}. "
                           "Nothing was changed; try again later.") from exc


def reject(db, order: Order, note: str) -> None:
    order.status = "rejected"
    order.note = note
    for item in order.items:
        item.status = "rejected"
    events.record(db, "order.rejected", order.tenant_id, {
        "order_id": order.id, "account_id": order.account_id, "note": note})


# -- advisors' queue -------------------------------------------------------------------------
def case_view(c: AdvisorCase) -> dict:
    claimed = c.claimed_by if c.claim_expires_at and c.claim_expires_at > utcnow() else None
    return {"id": c.id, "tenant_id": c.tenant_id, "account_id": c.account_id,
            "order_id": c.order_id, "reason": c.reason,
            "status": "claimed" if c.status == "open" and claimed else c.status,
            "assigned_advisor_id": c.assigned_advisor_id, "pool": c.pool, "claimed_by": claimed,
            "claim_expires_at": c.claim_expires_at if claimed else None,
            "due_at": c.due_at, "decision": c.decision, "note": c.note}


def _mine(advisor):
    return or_(AdvisorCase.assigned_advisor_id == advisor.id,
               (AdvisorCase.assigned_advisor_id.is_(None)) & (AdvisorCase.pool == advisor.pool))


def list_cases(db, status: str | None) -> list[dict]:
    advisor = require_advisor().advisor
    rows = db.scalars(select(AdvisorCase).where(_mine(advisor))
                      .order_by(AdvisorCase.due_at, AdvisorCase.created_at))
    views = [case_view(c) for c in rows]
    return [v for v in views if status is None or v["status"] == status]


def _load_case(db, case_id: str) -> AdvisorCase:
    advisor = require_advisor().advisor
    case = db.scalar(select(AdvisorCase).where(AdvisorCase.id == case_id, _mine(advisor))
                     .with_for_update())
    if case is None:
        raise not_found("case")
    return case


def _take(case: AdvisorCase, advisor_id: str) -> None:
    now = utcnow()
    if case.status != "open":
        raise GatewayError(409, "case_resolved", "This case is already resolved.")
    if case.claimed_by not in (None, advisor_id) and case.claim_expires_at and case.claim_expires_at > now:
        raise GatewayError(409, "case_claimed", "Another advisor is working on this case.",
                           claimed_by=case.claimed_by)
    case.claimed_by = advisor_id
    case.claim_expires_at = now + timedelta(seconds=current_app.config["CASE_CLAIM_LEASE_SECONDS"])


def claim(db, case_id: str) -> dict:
    advisor = require_advisor().advisor
    case = _load_case(db, case_id)
    _take(case, advisor.id)
    db.commit()
    logs.step("case claimed", case_id=case.id, order_id=case.order_id, advisor_id=advisor.id,
              tenant=case.tenant_id)
    return case_view(case)


def resolve(db, case_id: str, decision: str, note: str | None) -> dict:
    advisor = require_advisor().advisor
    case = _load_case(db, case_id)
    _take(case, advisor.id)
    order = db.get(Order, case.order_id, with_for_update=True) if case.order_id else None
    if order is not None and order.status == "awaiting_advisor":
        if decision == "approve":
            _apply_or_refuse(db, order)
        else:
            reject(db, order, note or "Rejected by your account advisor.")
    case.status, case.decision, case.note = "resolved", decision, note
    case.resolved_at = utcnow()
    events.record(db, "advisor_case.resolved", case.tenant_id, {
        "case_id": case.id, "order_id": case.order_id, "decision": decision, "note": note,
        "advisor_id": advisor.id})
    db.commit()
    if order is not None and order.status == "completed":
        jobs.notify_completed(db, order)
    return case_view(case)
