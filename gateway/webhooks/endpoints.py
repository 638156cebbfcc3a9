"""Managing webhook endpoints (scope `admin`): the secret is shown once, at creation."""

from __future__ import annotations

import base64
import secrets

from flask import current_app
from sqlalchemy import delete, select, update

from adapters import outbox, webhook_urls
from gateway.access import require_scope
from gateway.errors import GatewayError, not_found
from gateway.orders.jobs import relay_outbox
from gateway.orders.models import Event
from gateway.webhooks.delivery import DELIVER
from gateway.webhooks.models import WebhookDelivery, WebhookEndpoint
from tenants.db import utcnow
from tenants.models import Tenant


def new_secret() -> str:
    # Standard Webhooks secrets: "whsec_" and base64 of 24 to 64 random bytes.
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()


def view(row: WebhookEndpoint, *, secret: bool = False) -> dict:
    body = {"id": row.id, "url": row.url, "events": row.events, "tenant_id": row.tenant_id,
            "description": row.description, "enabled": row.enabled,
            "disabled_reason": row.disabled_reason, "created_at": row.created_at,
            "updated_at": row.updated_at}
    if secret:
        body["secret"] = row.secret
    return body


def delivery_view(row: WebhookDelivery) -> dict:
    return {"id": row.id, "endpoint_id": row.endpoint_id, "event_id": str(row.event_id),
            "event_type": row.event_type, "status": row.status, "attempts": row.attempts,
            "last_status_code": row.last_status_code, "last_error": row.last_error,
            "next_attempt_at": row.next_attempt_at, "created_at": row.created_at,
            "delivered_at": row.delivered_at}


def check_url(url: str) -> None:
    cfg = current_app.config
    try:
        webhook_urls.check(url, development=cfg["ENV"] == "development",
                           allow_private=cfg["WEBHOOK_ALLOW_PRIVATE"],
                           resolver=cfg.get("WEBHOOK_RESOLVER"))
    except webhook_urls.UrlRefused as exc:
        raise GatewayError(422, "webhook_url_refused", str(exc), reason=exc.reason,
                           errors={"url": [str(exc)]}) from exc


def _skip_unheard_events(db, this: str | None = None) -> None:
    """An endpoint receives the events recorded from now on, not a history nobody listened to:
    while no endpoint is enabled the fan-out pass leaves events alone, so they are marked done
    here. (With other endpoints enabled, the pass owes them those events: left as they are.)"""
    others = select(WebhookEndpoint.id).where(WebhookEndpoint.enabled.is_(True))
    if this is not None:
        others = others.where(WebhookEndpoint.id != this)
    if db.scalar(others.limit(1)) is None:
        db.execute(update(Event).where(Event.fanned_out_at.is_(None)).values(fanned_out_at=utcnow()))


def _load(db, endpoint_id: str) -> WebhookEndpoint:
    require_scope("admin")
    row = db.get(WebhookEndpoint, endpoint_id)
    if row is None:
        raise not_found("webhook endpoint")
    return row


def create(db, data: dict) -> dict:
    require_scope("admin")
    check_url(data["url"])
    tenant_id = data.get("tenant_id")
    if tenant_id is not None and db.get(Tenant, tenant_id) is None:
        raise GatewayError(422, "unknown_tenant", "No such tenant.",
                           errors={"tenant_id": ["unknown tenant"]})
    row = WebhookEndpoint(url=data["url"], events=data["events"], tenant_id=tenant_id,
                          description=data.get("description"), secret=new_secret(), enabled=True)
    _skip_unheard_events(db)
    db.add(row)
    db.commit()
    return view(row, secret=True)


def list_all(db) -> list[dict]:
    require_scope("admin")
    return [view(r) for r in db.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id))]


def read(db, endpoint_id: str) -> dict:
    return view(_load(db, endpoint_id))


def patch(db, endpoint_id: str, data: dict) -> dict:
    row = _load(db, endpoint_id)
    if "url" in data:
        check_url(data["url"])
        row.url = data["url"]
    if "events" in data:
        row.events = data["events"]
    if "description" in data:
        row.description = data["description"]
    resumed = data.get("enabled") is True and not row.enabled
    if "enabled" in data:
        row.enabled = data["enabled"]
        row.disabled_reason = None if row.enabled else "disabled by an administrator"
    if resumed:
        _skip_unheard_events(db, row.id)
        outbox.add(db, DELIVER, args=[row.id])  # what waited while disabled goes out now
    db.commit()
    if resumed:
        relay_outbox()
    return view(row)


def remove(db, endpoint_id: str) -> None:
    row = _load(db, endpoint_id)
    db.execute(delete(WebhookDelivery).where(WebhookDelivery.endpoint_id == row.id))
    db.delete(row)
    db.commit()


def deliveries(db, endpoint_id: str, limit: int, after: str | None,
               status: str | None = None) -> list[dict]:
    row = _load(db, endpoint_id)
    query = (select(WebhookDelivery).where(WebhookDelivery.endpoint_id == row.id)
             .order_by(WebhookDelivery.event_id, WebhookDelivery.id).limit(limit))
    if status:
        query = query.where(WebhookDelivery.status == status)
    if after:
        cursor = db.get(WebhookDelivery, after)
        if cursor is None or cursor.endpoint_id != row.id:
            raise GatewayError(422, "validation_error", "The query string is not valid.",
                               errors={"after": ["Not the id of an item of this list."]})
        query = query.where(WebhookDelivery.event_id > cursor.event_id)
    return [delivery_view(d) for d in db.scalars(query)]


def retry(db, endpoint_id: str, delivery_id: str) -> dict:
    row = _load(db, endpoint_id)
    delivery = db.get(WebhookDelivery, delivery_id)
    if delivery is None or delivery.endpoint_id != row.id:
        raise not_found("delivery")
    if not row.enabled:
        raise GatewayError(409, "webhook_endpoint_disabled",
                           "The endpoint is disabled: enable it (PATCH enabled=true) first.")
    delivery.status, delivery.next_attempt_at = "pending", utcnow()
    outbox.add(db, DELIVER, args=[row.id])
    db.commit()
    relay_outbox()
    return delivery_view(delivery)
