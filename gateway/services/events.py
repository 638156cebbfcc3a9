"""Domain events (the /events feed) and the audit trail."""

from __future__ import annotations

from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from gateway import logs, metrics
from gateway.access import require_any_scope
from gateway.orders.models import AuditRecord, Event


def record(db, type_: str, tenant_id: str, data: dict) -> None:
    db.add(Event(type=type_, tenant_id=tenant_id, data=data))


@sa_event.listens_for(Session, "before_flush")
def _observe(db, _flush_context, _instances) -> None:
    """Every event added through the session, whoever adds it, is logged and counted (no
    statement). Webhooks pick up every event, however inserted, in their fan-out pass."""
    for obj in list(db.new):
        if isinstance(obj, Event) and not getattr(obj, "_observed", False):
            obj._observed = True
            logs.event(obj.type, obj.tenant_id, obj.data or {})
            metrics.order_event(db, obj.type, obj.data or {})


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
