"""The advisors' queue: cases to decide, with everything the decision needs in view."""

from __future__ import annotations

from sqlalchemy import select

from adapters.errors import AdapterError
from adapters.models import AdvisorCase, CaseEntry
from gateway import logs
from gateway.access import billing_contacts, cases_visible_to, require_advisor
from gateway.errors import not_found
from gateway.orders import dispatch, lifecycle
from gateway.orders.models import Order
from gateway.services import accounts, orders
from gateway.services.portal import adapter_refusal, subscription_changed
from tenants.models import Account, Tenant


def answer_due(deps, tenant_id: str):
    """When an advisor's answer is due for a change placed now (what its case would say)."""
    return lifecycle.case_due(deps.db.get(Tenant, tenant_id), deps.clock.now())


def case_view(c: AdvisorCase, now) -> dict:
    claimed = lifecycle.live_claim(c, now)
    return {"id": c.id, "tenant_id": c.tenant_id, "account_id": c.account_id,
            "order_id": c.order_id, "reason": c.reason,
            "status": "claimed" if c.status == "open" and claimed else c.status,
            "assigned_advisor_id": c.assigned_advisor_id, "pool": c.pool, "claimed_by": claimed,
            "claim_expires_at": c.claim_expires_at if claimed else None,
            "due_at": c.due_at, "decision": c.decision, "note": c.note}


def list_cases(deps, status: str | None) -> list[dict]:
    advisor = require_advisor().advisor
    now = deps.clock.now()
    rows = deps.db.scalars(select(AdvisorCase).where(cases_visible_to(advisor))
                           .order_by(AdvisorCase.due_at, AdvisorCase.created_at))
    views = [case_view(c, now) for c in rows]
    return [v for v in views if status is None or v["status"] == status]


def _load_case(db, case_id: str, *, lock: bool = False) -> AdvisorCase:
    advisor = require_advisor().advisor
    query = select(AdvisorCase).where(AdvisorCase.id == case_id, cases_visible_to(advisor))
    case = db.scalar(query.with_for_update() if lock else query)
    if case is None:
        raise not_found("case")
    return case


def read_case(deps, case_id: str) -> dict:
    db = deps.db
    case = _load_case(db, case_id)
    body = case_view(case, deps.clock.now())
    account = accounts.account_view(db, db.get(Account, case.account_id))
    body["account"] = {k: account.get(k) for k in (
        "id", "name", "country", "segment", "segment_reasons", "vat_number", "credit_balance",
        "payment_method", "payment_terms", "billing_channel", "currency")}
    body["account"]["vat_status"] = account.get("vat_status", "valid" if account["vat_number"] else None)
    body["billing_contacts"] = billing_contacts(db, case.account_id)
    order = db.get(Order, case.order_id) if case.order_id else None
    body["order"] = orders.detail(db, order) if order is not None else None
    body["route_reason"] = order.route_reason if order is not None else case.reason
    body["history"] = [{"at": e.at, "actor": e.actor, "action": e.action, "note": e.note}
                       for e in db.scalars(select(CaseEntry).where(CaseEntry.case_id == case.id)
                                           .order_by(CaseEntry.at, CaseEntry.id))]
    return body


def claim(deps, case_id: str) -> dict:
    db, advisor, now = deps.db, require_advisor().advisor, deps.clock.now()
    case = _load_case(db, case_id, lock=True)
    lifecycle.claim(db, case, advisor, now=now, lease=dispatch.claim_lease(deps))
    db.commit()
    logs.step("case claimed", case_id=case.id, order_id=case.order_id, advisor_id=advisor.id,
              tenant=case.tenant_id)
    return case_view(case, now)


def release(deps, case_id: str) -> dict:
    db, advisor, now = deps.db, require_advisor().advisor, deps.clock.now()
    case = _load_case(db, case_id, lock=True)
    lifecycle.release(db, case, advisor, now=now)
    db.commit()
    return case_view(case, now)


def add_note(deps, case_id: str, note: str) -> dict:
    db, advisor = deps.db, require_advisor().advisor
    case = _load_case(db, case_id)
    lifecycle.add_note(db, case, advisor, note, now=deps.clock.now())
    db.commit()
    return read_case(deps, case_id)


def resolve(deps, case_id: str, decision: str, note: str | None) -> dict:
    db, advisor, now = deps.db, require_advisor().advisor, deps.clock.now()
    case = _load_case(db, case_id)
    # The order first, then its case: the same lock order as a withdrawal, so the two wait
    # for each other instead of deadlocking; whichever comes second sees the first's outcome.
    order = (db.get(Order, case.order_id, with_for_update=True, populate_existing=True)
             if case.order_id else None)
    case = db.get(AdvisorCase, case.id, with_for_update=True, populate_existing=True)
    try:
        lifecycle.decide(db, case, order, advisor, decision, note, now=now,
                         lease=dispatch.claim_lease(deps),
                         adapter=deps.adapter_for(order.segment) if order is not None else None)
    except AdapterError as exc:
        raise adapter_refusal(db, exc) from exc
    except lifecycle.SubscriptionChanged as exc:
        raise subscription_changed(db, exc) from exc
    db.commit()
    deps.relay()
    return case_view(case, now)
