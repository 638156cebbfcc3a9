"""Queue jobs of the order flow: carrying orders out, the external portal, notifications.

Every transition goes through `gateway.orders.lifecycle`; the jobs pick its collaborators
(session, time, adapters, notifier) from the app and commit.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import current_app
from sqlalchemy import bindparam, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import joinedload

from adapters import outbox
from adapters.models import AdvisorCase, PortalQuote
from gateway import composition, logs, metrics
from gateway.orders import lifecycle, mail
from gateway.orders.models import Order
from gateway.services import pricing
from tenants import transactions
from tenants.models import Advisor

log = logging.getLogger(__name__)

# Kept importable here for callers of the former module layout.
SubscriptionChanged = lifecycle.SubscriptionChanged
# The order and its items in one statement (the relationship's `selectin` takes a second). Built
# once and bound per job: building it cost as much Python as running it.
_WITH_ITEMS = select(Order).options(joinedload(Order.items)).where(Order.id == bindparam("order_id"))
# The row lock makes a second run wait, then see the order completed.
_WITH_ITEMS_LOCKED = _WITH_ITEMS.with_for_update(of=Order)


def process_order(order_id: str) -> None:
    """Queue job for billing-center orders; safe to run twice."""
    deps = composition.for_job()
    db = deps.db
    order = db.execute(_WITH_ITEMS_LOCKED, {"order_id": order_id}).unique().scalar_one_or_none()
    if order is None or order.status != lifecycle.PROCESSING:
        return
    # The contacts hear of the completed order from this job, not from a second job through
    # the queue (half the queue's work per order). What their mail needs is read in the apply's
    # transaction (one transaction per order, not two); it is written and sent once that has
    # committed (the row locks are not held while it is written).
    apply(deps, order, caller_tells_contacts=True)
    reading = _completion_mail(deps, order)
    db.commit()
    _tell_contacts_now(deps, order, reading)
    deps.relay()


_UNREAD = object()  # what the completion mail needs could not be read


def _completion_mail(deps, order: Order):
    """What the completion mail needs, or _UNREAD if it could not be read: a mail must not undo
    the order. A database error is the transaction's, not the mail's: it is raised, the apply
    is undone with it and the job runs again (the billing center knows the change by its key)."""
    try:
        return _reading(deps, order, "completed")
    except DBAPIError:
        raise
    except Exception:
        log.warning("order %s: the completion mail could not be read", order.id, exc_info=True)
        return _UNREAD


def _tell_contacts_now(deps, order: Order, reading) -> None:
    """A mail that cannot go out now is given back to the relay, which sends it as a job, with
    the queue's retries. A process that dies between the commit and the mail loses that mail,
    as one dying inside the notification job would."""
    try:
        if reading is _UNREAD:
            raise RuntimeError("the completion mail could not be read")
        _send(deps, reading)
    except Exception:
        log.warning("order %s: the completion mail goes through the queue instead", order.id,
                    exc_info=True)
        deps.db.rollback()
        outbox.release(deps.db, lifecycle.NOTIFY_ORDER,
                       lifecycle.notify_job_id(order.id, "completed"))


def apply(deps, order: Order, *, through_adapter: bool = True,
          caller_tells_contacts: bool = False) -> None:
    """The order applied with `deps`' clock and the adapter of its segment (see lifecycle.apply)."""
    lifecycle.apply(deps.db, order, actor="gateway", now=deps.clock.now(),
                    adapter=deps.adapter_for(order.segment) if through_adapter else None,
                    caller_tells_contacts=caller_tells_contacts)


def order_failed(order_id: str) -> None:
    """Retries are exhausted: a person takes over; the order is not lost."""
    deps = composition.for_job()
    db = deps.db
    order = db.get(Order, order_id, with_for_update=True)
    if order is None or order.status not in lifecycle.TRANSITIONS["fail"][0]:
        return
    lifecycle.fail(db, order, "adapter_failed: the billing center did not apply the order after retries",
                   now=deps.clock.now())
    db.commit()
    logs.step("order failed", order_id=order.id, tenant=order.tenant_id, reason="adapter_failed")
    metrics.count_order("failed", order.route_destination)
    deps.relay()


# -- the corporate portal over HTTP ----------------------------------------------------------
def send_portal_quote(order_id: str) -> None:
    """Queue job: the enterprise order becomes a quote in the external portal (once per order)."""
    deps = composition.for_job()
    db = deps.db
    quote = db.scalar(select(PortalQuote).where(PortalQuote.order_id == order_id).with_for_update())
    if quote is None or quote.external_id or quote.status != "open":
        return
    order = db.get(Order, order_id)
    payload = lifecycle.change_payload(order)
    answer = deps.corporate_portal.create_quote({
        "order_id": order.id, "idempotency_key": f"quote-{order.id}",
        "account_id": order.account_id, "items": payload["items"],
        "total_due": payload["total_due"], "currency": order.currency,
        "expires_at": quote.expires_at.isoformat() + "Z"})
    quote.external_id = str(answer["id"])
    db.commit()


def withdraw_portal_quote(order_id: str) -> None:
    """Queue job: a quote withdrawn in the gateway is withdrawn in the external portal too."""
    deps = composition.for_job()
    quote = deps.db.scalar(select(PortalQuote).where(PortalQuote.order_id == order_id))
    if quote is None or quote.status != "withdrawn" or not quote.external_id:
        return
    external_id = quote.external_id
    deps.db.rollback()  # no transaction held during the call
    deps.corporate_portal.withdraw_quote(external_id, f"withdraw-{order_id}")


def poll_portal_quotes(limit: int = 100) -> int:
    """Reads the outcome of open quotes in the external portal; returns how many moved on."""
    deps = composition.for_job()
    portal = deps.corporate_portal
    if not portal.remote:
        return 0
    db = deps.db
    open_ids = db.scalars(select(PortalQuote.id).where(
        PortalQuote.status == "open", PortalQuote.external_id.is_not(None)).limit(limit)).all()
    moved = 0
    for quote_id in open_ids:
        quote = db.get(PortalQuote, quote_id)
        answer = portal.quote_status(quote.external_id)
        if answer["status"] == "open":
            db.rollback()
            continue
        # The order first, then its quote: the same lock order as a withdrawal.
        order = db.get(Order, quote.order_id, with_for_update=True, populate_existing=True)
        quote = db.get(PortalQuote, quote_id, with_for_update=True, populate_existing=True)
        if quote.status != "open":
            db.rollback()
            continue
        # Accepted in the portal: it has the change already, nothing to send back.
        lifecycle.decide_quote(db, quote, order, answer["status"] == "accepted",
                               actor="corporate_portal", now=deps.clock.now(),
                               note=answer.get("note") or "Rejected in the corporate billing portal.",
                               po_number=answer.get("po_number"))
        db.commit()
        moved += 1
    db.rollback()  # end the read transaction before the relay opens its own
    if moved:
        deps.relay()
    return moved


# -- notifications -----------------------------------------------------------------------------
def notify_order(order_id: str, step: str) -> None:
    """Queue job: tell the account's billing contacts where their order stands."""
    deps = composition.for_job()
    if deps.notifier is None:
        return
    order = deps.db.execute(_WITH_ITEMS, {"order_id": order_id}).unique().scalar_one_or_none()
    if order is not None:
        _notify(deps, order, step)


def _notify(deps, order: Order, step: str) -> None:
    """The mail of `step` to each billing contact of the order's account (loaded with items)."""
    reading = _reading(deps, order, step)
    transactions.finish(deps.db)  # read everything; hold no transaction while the mail goes out
    _send(deps, reading)


def _reading(deps, order: Order, step: str):
    """What the mail of `step` needs from the database; None without a notifier."""
    if deps.notifier is None:
        return None
    deps.cache.refresh(deps.db)  # names and languages from the per-process caches, kept current
    return mail.read(deps.db, order, step, cache=deps.cache,
                     catalog=lambda product: pricing.catalog(deps, product))


def _send(deps, reading) -> None:
    if reading is None:
        return
    base_url = deps.settings.get("PUBLIC_URL") or deps.settings["ISSUER"]
    for to, subject, body in mail.render(reading, base_url=base_url):
        deps.notifier.send(to, subject, body)


def notify_case(case_id: str) -> None:
    """Queue job: tell the case's advisor (or every advisor of its pool) that it is waiting."""
    deps = composition.for_job()
    notifier, db = deps.notifier, deps.db
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


def notify_case_withdrawn(case_id: str) -> None:
    """Queue job: the advisor holding the case (its claimant, else its dedicated advisor)
    learns that the billing contact withdrew the order."""
    deps = composition.for_job()
    notifier, db = deps.notifier, deps.db
    case = db.get(AdvisorCase, case_id)
    if notifier is None or case is None:
        return
    holder = case.claimed_by or case.assigned_advisor_id
    if holder is None:
        return
    advisor = db.get(Advisor, holder)
    notifier.send(advisor.email, f"Case {case.id} withdrawn",
                  f"The billing contact withdrew order {case.order_id} (account {case.account_id}).\n"
                  f"Case {case.id} is closed; nothing was applied.")


# -- periodic pass ---------------------------------------------------------------------------
def requeue_stuck_orders() -> int:
    """Orders still `processing` long after their job was sent (a worker or the whole process
    died with the job in hand, Redis lost it) are sent again; the job is idempotent."""
    deps = composition.for_job()
    db = deps.db
    cutoff = deps.clock.now() - timedelta(seconds=deps.settings["STUCK_ORDER_SECONDS"])
    stuck = db.scalars(select(Order).where(Order.status == lifecycle.PROCESSING,
                                           Order.updated_at < cutoff)
                       .with_for_update(skip_locked=True).limit(100)).all()
    for order in stuck:
        outbox.add(db, lifecycle.PROCESS, args=[order.id], on_failure=lifecycle.FAILED)
        order.updated_at = deps.clock.now()
    db.commit()
    return len(stuck)


def relay_outbox() -> None:
    """Hands what the outbox holds to the job queue, then makes the webhook deliveries of new
    events (and hands them over too)."""
    from adapters.outbox import relay
    from gateway.webhooks.delivery import fan_out

    relay(current_app.extensions["gateway.db"].sessionmaker, current_app.extensions["gateway.queue"])
    fan_out()


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
