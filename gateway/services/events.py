"""Domain events (the /events feed) and the audit trail."""

from __future__ import annotations

from sqlalchemy import select

from gateway import logs, metrics
from gateway.access import require_any_scope
from gateway.orders.models import AuditRecord, Event
from gateway.webhooks import delivery


def record(db, type_: str, tenant_id: str, data: dict) -> None:
    event = Event(type=type_, tenant_id=tenant_id, data=data)
    db.add(event)
    logs.event(type_, tenant_id, data)
    metrics.order_event(db, type_, data)
    # Every event type, whoever records it, reaches the webhook endpoints that want it.
    delivery.on_event(db, event)


def audit(db, *, tenant_id: str, account_id: str, actor: str, action: str, data: dict) -> None:
    db.add(AuditRecord(tenant_id=tenant_id, account_id=account_id, actor=actor, action=action,
                       data=data))


def feed(db, after: str | None, limit: int) -> list[dict]:
    require_any_scope(frozenset({"read", "admin"}), "read")
    query = select(Event).order_by(Event.id).limit(limit)
    if after:
        query = query.where(Event.id > int(after))
    return [{"id": str(e.id), "type": e.type, "tenant_id": e.tenant_id, "created_at": e.created_at,
             "data": e.data} for e in db.scalars(query)]
