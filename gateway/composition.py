"""The composition root: builds what one request (or one job) works with, once, so that use
cases take their collaborators explicitly and never reach for Flask's globals themselves."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from flask import current_app, g
from sqlalchemy.orm import Session

from gateway import jsonio
from gateway.auth.principal import Principal
from gateway.cache import ConfigCache
from tenants.clock import Clock


@dataclass(frozen=True)
class Deps:
    db: Session
    clock: Clock
    principal: Principal | None
    settings: Mapping[str, Any]
    queue: Any = None
    billing_center: Any = None
    corporate_portal: Any = None
    notifier: Any = None
    cache: ConfigCache = field(default_factory=ConfigCache)
    # Serialises an answer exactly as the HTTP layer will (stored for idempotent replays).
    dumps: Callable[[Any], str] = jsonio.dumps
    # Hands what the outbox holds to the job queue once a transaction has committed.
    relay: Callable[[], None] = lambda: None

    def adapter_for(self, segment: str | None):
        return self.corporate_portal if segment == "enterprise" else self.billing_center


def build(app, db: Session, principal: Principal | None) -> Deps:
    ext = app.extensions
    return Deps(db=db, clock=ext["gateway.clock"], principal=principal, settings=app.config,
                queue=ext.get("gateway.queue"), billing_center=ext.get("gateway.billing_center"),
                corporate_portal=ext.get("gateway.corporate_portal"),
                notifier=ext.get("gateway.notifier"), cache=ext["gateway.cache"],
                dumps=app.json.dumps,
                relay=ext.get("gateway.relay") or (lambda: None))


def for_request() -> Deps:
    """This request's collaborators (built on first use, then the same object)."""
    deps = g.get("deps")
    if deps is None:
        from gateway.database import session

        deps = g.deps = build(current_app._get_current_object(), session(), g.get("principal"))
    return deps


def for_job() -> Deps:
    """A queue job's collaborators: no caller, the app's clock and adapters, a fresh session.
    What a job commits is relayed as a request's is, by this process's relay thread (the RQ
    worker runs jobs in its own process, which outlives them)."""
    return for_request()
