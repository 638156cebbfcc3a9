"""Fan-out of events to endpoints and the delivery job: at least once, in event order per
endpoint, with exponential backoff for at least `WEBHOOK_RETRY_HOURS`.

A fan-out pass (after each outbox relay, and in the periodic pass) gives each event, in id
order, one delivery row per matching endpoint, and sends each endpoint that got one a delivery
job through the queue. The job delivers an endpoint's pending
deliveries oldest event first, holding a lease on the endpoint so that one worker at a time
sends to it; a failed attempt sets `next_attempt_at` and stops there, so event N+1 waits while
event N is pending. The periodic pass sends again what has come due.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from datetime import timedelta

from flask import current_app
from sqlalchemy import bindparam, exists, func, or_, select, update
from sqlalchemy.orm import aliased

from adapters import webhook_sender
from gateway import metrics
from gateway.database import session
from gateway.orders.models import Event
from gateway.webhooks.models import WebhookDelivery, WebhookEndpoint
from tenants import transactions
from tenants.db import utcnow

log = logging.getLogger("gateway.webhooks")

DELIVER = "gateway.webhooks.delivery.deliver"
LEASE = timedelta(seconds=60)  # longer than one attempt (10 s timeout); renewed per attempt
ALL_TENANTS = "*"  # the tenant of an event about an endpoint that serves every tenant


def wants(endpoint_events: list, event_type: str) -> bool:
    return "*" in endpoint_events or event_type in endpoint_events


_LISTENED = select(exists().where(WebhookEndpoint.enabled.is_(True)))


def fan_out(limit: int = 500) -> int:
    """One delivery per enabled endpoint that wants it, for every event not fanned out yet,
    however it was inserted (the session, a Core INSERT, a CTE): nothing on the hot path.
    Runs with the outbox relay and in the periodic pass; returns how many events it took."""
    db = current_app.extensions["gateway.db"].sessionmaker()
    cache = current_app.extensions["gateway.cache"]
    try:
        # Whether anyone listens, from the per-process cache (it runs after every relay pass):
        # while nobody does, events stay as they are (see endpoints.create), so a new endpoint
        # not seen yet here only has its first events fanned out a pass later. Who listens is
        # read fresh: a stale list would mark events done past a new endpoint.
        cache.refresh(db)
        if not cache.get("webhooks", "listened", lambda: db.scalar(_LISTENED)):
            transactions.finish(db)
            return 0
        endpoints = db.execute(select(WebhookEndpoint.id, WebhookEndpoint.tenant_id,
                                      WebhookEndpoint.events)
                               .where(WebhookEndpoint.enabled.is_(True))).all()
        if not endpoints:  # nobody listens: events stay as they are (see endpoints.create)
            transactions.finish(db)
            return 0
        events = _in_order(db, limit, current_app.config["WEBHOOK_GAP_WAIT_SECONDS"],
                           current_app.extensions.setdefault("gateway.webhook_gaps", {}))
        if not events:
            transactions.finish(db)
            return 0
        now = utcnow()
        touched = set()
        for event in events:
            for endpoint_id, tenant_id, wanted in endpoints:
                if tenant_id in (None, event.tenant_id) and wants(wanted or [], event.type):
                    db.add(WebhookDelivery(endpoint_id=endpoint_id, event_id=event.id,
                                           event_type=event.type, status="pending", attempts=0,
                                           next_attempt_at=now))
                    touched.add(endpoint_id)
            event.fanned_out_at = now
        db.commit()
    finally:
        db.close()
    _enqueue(sorted(touched))  # lost (queue down)? the periodic pass sends what is due
    return len(events)


# -- event order ----------------------------------------------------------------------------
# Event ids come from a sequence as each event is inserted, but transactions commit in their own
# order: event 101 can be visible while 100 is still being written. Fanned out at once, 101
# would be delivered first. So a pass (one at a time on PostgreSQL) fans events out in id order
# up to the first missing id, and waits for it; an id still missing after WEBHOOK_GAP_WAIT_SECONDS
# belongs to a transaction that rolled back (or one held that long): the pass goes past it.
_FAN_OUT_LOCK = 0x77656268  # the advisory lock key of the pass ("webh")
_gaps_lock = threading.Lock()
_older = aliased(Event)
# Each candidate with the id of the event before it (fanned out or not), in one snapshot.
_CANDIDATES = (select(Event, select(func.max(_older.id)).where(_older.id < Event.id)
                      .scalar_subquery())
               .where(Event.fanned_out_at.is_(None)).order_by(Event.id)
               .limit(bindparam("limit")))


def _in_order(db, limit: int, gap_wait: float, gaps: dict[int, float]) -> list[Event]:
    """The events to fan out now, oldest first. `gaps` (the app's): event id -> when this
    process first saw an id before it missing. On SQLite a writer holds the database from its
    first write to its commit, so ids become visible in order: every event not fanned out."""
    if db.get_bind().dialect.name != "postgresql":
        return db.scalars(select(Event).where(Event.fanned_out_at.is_(None))
                          .order_by(Event.id).limit(limit)).all()
    # One pass at a time: a second one would see the first's rows as missing ids.
    if not db.scalar(select(func.pg_try_advisory_xact_lock(_FAN_OUT_LOCK))):
        return []  # the pass running now takes them, or the next one
    rows = db.execute(_CANDIDATES, {"limit": limit}).all()
    now, ready = time.monotonic(), []
    with _gaps_lock:
        for event, previous in rows:
            if event.id - 1 != (previous or 0):  # ids in between are missing
                seen = gaps.setdefault(event.id, now)
                if now - seen < gap_wait:
                    break
            ready.append(event)
        waiting = {event.id for event, _previous in rows[len(ready):]}
        for key in [k for k in gaps if k not in waiting]:  # passed, or fanned out elsewhere
            del gaps[key]
    return ready


def _enqueue(endpoint_ids) -> None:
    queue = current_app.extensions["gateway.queue"]
    for endpoint_id in endpoint_ids:
        try:
            queue.enqueue(DELIVER, endpoint_id, request_id=None)
        except Exception:  # the queue is down: the next periodic pass tries again
            log.warning("webhooks: queue unavailable, %d endpoint(s) wait", len(endpoint_ids))
            return


def event_body(event: Event) -> str:
    return json.dumps({"id": str(event.id), "type": event.type, "tenant_id": event.tenant_id,
                       "created_at": event.created_at.isoformat() + "Z", "data": event.data},
                      default=str, separators=(",", ":"))


def backoff(attempts: int, cfg) -> timedelta:
    seconds = cfg["WEBHOOK_BACKOFF_SECONDS"] * 2 ** max(0, attempts - 1)
    return timedelta(seconds=min(seconds, cfg["WEBHOOK_BACKOFF_MAX_SECONDS"]))


def _claim(db, endpoint_id: str) -> bool:
    now = utcnow()
    taken = db.execute(update(WebhookEndpoint).where(
        WebhookEndpoint.id == endpoint_id,
        or_(WebhookEndpoint.lease_until.is_(None), WebhookEndpoint.lease_until < now),
    ).values(lease_until=now + LEASE))
    db.commit()
    return taken.rowcount == 1


def _release(db, endpoint_id: str) -> None:
    db.rollback()
    db.execute(update(WebhookEndpoint).where(WebhookEndpoint.id == endpoint_id)
               .values(lease_until=None))
    db.commit()


def deliver(endpoint_id: str) -> int:
    """Queue job: send the endpoint's due deliveries in event order; returns how many landed."""
    db = session()
    if not _claim(db, endpoint_id):
        return 0  # another worker holds the endpoint and will carry on through its queue
    sent = 0
    try:
        while _one(db, endpoint_id):
            sent += 1
    finally:
        _release(db, endpoint_id)
    return sent


def _one(db, endpoint_id: str) -> bool:
    """Attempt the oldest pending delivery; True when the next one may go too."""
    cfg = current_app.config
    endpoint = db.get(WebhookEndpoint, endpoint_id, populate_existing=True)
    if endpoint is None or not endpoint.enabled:
        db.commit()
        return False
    delivery = db.scalar(select(WebhookDelivery).where(
        WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending")
        .order_by(WebhookDelivery.event_id).limit(1))
    if delivery is None or (delivery.next_attempt_at and delivery.next_attempt_at > utcnow()):
        db.commit()
        return False
    url, secret, body = endpoint.url, endpoint.secret, event_body(delivery.event)
    endpoint.lease_until = utcnow() + LEASE
    db.commit()  # no transaction (nor SQLite write lock) is held across the HTTP call
    outcome = webhook_sender.send(
        url, secret, delivery.id, body, development=cfg["ENV"] == "development",
        allow_private=cfg["WEBHOOK_ALLOW_PRIVATE"], timeout=cfg["WEBHOOK_TIMEOUT"],
        resolver=cfg.get("WEBHOOK_RESOLVER"), ca_bundle=cfg.get("WEBHOOK_CA_BUNDLE"))
    now = utcnow()
    delivery.attempts += 1
    delivery.last_status_code = outcome.status_code
    delivery.last_error = outcome.error
    context = {"endpoint_id": endpoint_id, "delivery_id": delivery.id,
               "event_id": delivery.event_id, "event_type": delivery.event_type,
               "attempts": delivery.attempts, "status_code": outcome.status_code}
    if outcome.delivered:
        delivery.status, delivery.delivered_at, delivery.next_attempt_at = "succeeded", now, None
        db.commit()
        metrics.count_webhook("succeeded")
        log.info("webhook delivered", extra={"domain": context})
        return True
    if outcome.gone:
        # The receiver says it wants nothing more: stop sending; what waits stays pending.
        delivery.next_attempt_at = None
        _disable(db, endpoint, "410 Gone answered to a delivery")
        db.commit()
        metrics.count_webhook("gone")
        log.warning("webhook endpoint disabled (410)", extra={"domain": context})
        return False
    if now - delivery.created_at >= timedelta(hours=cfg["WEBHOOK_RETRY_HOURS"]):
        delivery.status, delivery.next_attempt_at = "failed", None
        db.commit()
        metrics.count_webhook("failed")
        log.warning("webhook failed for good: %s", outcome.error, extra={"domain": context})
        return True  # given up: the next event may go
    delivery.next_attempt_at = now + backoff(delivery.attempts, cfg)
    db.commit()
    metrics.count_webhook("retry")
    log.warning("webhook failed, retry at %s: %s", delivery.next_attempt_at.isoformat() + "Z",
                outcome.error, extra={"domain": context})
    return False


def _disable(db, endpoint: WebhookEndpoint, reason: str) -> None:
    endpoint.enabled = False
    endpoint.disabled_reason = reason
    db.flush()  # so that the event below is not fanned out to this endpoint
    # Observed (logged, fanned out) at flush like every event (gateway.services.events).
    db.add(Event(type="webhook_endpoint.disabled", tenant_id=endpoint.tenant_id or ALL_TENANTS,
                 data={"endpoint_id": endpoint.id, "url": endpoint.url, "reason": reason}))


def schedule_due(limit: int = 100) -> int:
    """The periodic pass: send a job for every endpoint whose oldest pending delivery is due."""
    fan_out()
    db = session()
    now = utcnow()
    earlier = aliased(WebhookDelivery)
    due = db.scalars(select(WebhookDelivery.endpoint_id).join(
        WebhookEndpoint, WebhookEndpoint.id == WebhookDelivery.endpoint_id).where(
        WebhookDelivery.status == "pending", WebhookEndpoint.enabled.is_(True),
        WebhookDelivery.next_attempt_at <= now,
        or_(WebhookEndpoint.lease_until.is_(None), WebhookEndpoint.lease_until < now),
        # only the endpoint's oldest pending delivery decides: later ones wait behind it
        ~select(earlier.id).where(earlier.endpoint_id == WebhookDelivery.endpoint_id,
                                  earlier.status == "pending",
                                  earlier.event_id < WebhookDelivery.event_id).exists(),
    ).distinct().limit(limit)).all()
    db.commit()
    _enqueue(due)
    return len(due)
